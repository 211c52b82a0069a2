import { Test, type TestingModule } from '@nestjs/testing';
import { CogmanClient } from '../client/cogman.client';
import { TaskHandler } from '../decorators/task-handler.decorator';
import { ScheduleNotFoundError } from '../errors';
import type { TaskContext } from '../task';
import { CogmanTesting, CogmanTestingModule } from './index';

const ran: (string | null)[] = [];

@TaskHandler('digest', { schedule: { every: 60_000, payload: { kind: 'digest' } } })
class DigestHandler {
  handle(_payload: unknown, ctx: TaskContext) {
    ran.push(ctx.task.primaryKey);
  }
}

describe('Recurring schedules in the testing kit', () => {
  let moduleRef: TestingModule;
  let cogman: CogmanClient;
  let testing: CogmanTesting;

  beforeEach(async () => {
    ran.length = 0;
    moduleRef = await Test.createTestingModule({
      imports: [CogmanTestingModule.forRoot()],
      providers: [DigestHandler],
    }).compile();
    await moduleRef.init();
    cogman = moduleRef.get(CogmanClient);
    testing = moduleRef.get(CogmanTesting);
  });

  afterEach(() => moduleRef.close());

  it('sets up the schedules declared on handlers and sends a task per tick as the clock moves', async () => {
    const [digest] = await cogman.listSchedules();
    expect(digest).toMatchObject({ id: 'digest', name: 'digest', every: 60_000, source: 'code' });
    const first = digest.nextRunAt!.getTime();
    await testing.advance(first - testing.now().getTime());
    await testing.advance(60_000);
    expect(ran).toEqual([
      `digest@${new Date(first).toISOString()}`,
      `digest@${new Date(first + 60_000).toISOString()}`,
    ]);
    expect(testing.sent('digest').map((task) => task.payload)).toEqual([
      { kind: 'digest' },
      { kind: 'digest' },
    ]);
    // runAll does not run the clock forward to ticks: it ends.
    expect(await testing.runAll()).toBe(0);
  });

  it('runs schedules created at run time, pauses, resumes, triggers and removes them', async () => {
    await cogman.upsertSchedule({ id: 'hourly', name: 'digest', cron: '0 * * * *' });
    await cogman.pauseSchedule('hourly');
    await cogman.pauseSchedule('digest');
    await testing.advance(3 * 3_600_000);
    expect(ran).toEqual([]);
    const triggered = await cogman.triggerSchedule('hourly');
    await testing.drain();
    expect(ran).toEqual([triggered.primaryKey]);
    const resumed = await cogman.resumeSchedule('hourly');
    await testing.advance(resumed.nextRunAt!.getTime() - testing.now().getTime());
    expect(ran).toHaveLength(2);
    expect((await cogman.getSchedule('hourly'))?.lastTask?.status).toBe('success');
    await cogman.removeSchedule('hourly');
    await expect(cogman.pauseSchedule('hourly')).rejects.toBeInstanceOf(ScheduleNotFoundError);
  });
});
