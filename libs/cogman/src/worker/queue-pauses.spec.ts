import { Test, type TestingModule } from '@nestjs/testing';
import { CogmanClient } from '../client/cogman.client';
import { TaskHandler } from '../decorators/task-handler.decorator';
import { TaskInvalidError } from '../errors';
import { CogmanTesting, CogmanTestingModule } from '../testing';
import type { TaskContext } from '../task';

const ran: string[] = [];

@TaskHandler('job')
class JobHandler {
  handle(_payload: unknown, ctx: TaskContext) {
    ran.push(ctx.task.priority);
  }
}

describe('Pausing in the testing kit', () => {
  let moduleRef: TestingModule;
  let cogman: CogmanClient;
  let testing: CogmanTesting;

  beforeEach(async () => {
    ran.length = 0;
    moduleRef = await Test.createTestingModule({
      imports: [CogmanTestingModule.forRoot()],
      providers: [JobHandler],
    }).compile();
    await moduleRef.init();
    cogman = moduleRef.get(CogmanClient);
    testing = moduleRef.get(CogmanTesting);
  });

  afterEach(() => moduleRef.close());

  it('holds the tasks of a paused priority until it is resumed', async () => {
    const state = await cogman.pause('low');
    expect(state.low.paused).toBe(true);
    expect(state.high).toEqual({ paused: false, since: null });
    await cogman.sendTasks([
      { name: 'job', priority: 'low' },
      { name: 'job', priority: 'high' },
    ]);
    expect(await testing.drain()).toBe(1);
    expect(ran).toEqual(['high']);
    expect(testing.queued()).toHaveLength(1);
    expect(cogman.services().paused).toEqual(['low']);
    expect((await cogman.queues()).paused).toEqual(['low']);

    await cogman.resume();
    expect(await testing.drain()).toBe(1);
    expect(ran).toEqual(['high', 'low']);
    expect(await cogman.pauses()).toEqual({
      high: { paused: false, since: null },
      low: { paused: false, since: null },
    });
  });

  it('pauses both priorities when none is given, and refuses an unknown one', async () => {
    await cogman.pause();
    await cogman.sendTask({ name: 'job', priority: 'high' });
    expect(await testing.runAll()).toBe(0);
    await expect(cogman.resume('urgent' as never)).rejects.toBeInstanceOf(TaskInvalidError);
  });
});
