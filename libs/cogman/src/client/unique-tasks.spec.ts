import { Test, type TestingModule } from '@nestjs/testing';
import { TaskHandler } from '../decorators/task-handler.decorator';
import { CogmanTesting, CogmanTestingModule } from '../testing';
import { CogmanClient } from './cogman.client';

@TaskHandler('sync', { unique: { ttl: 60_000 } })
class SyncHandler {
  handle() {}
}

describe('Unique tasks in the testing kit', () => {
  let moduleRef: TestingModule;
  let cogman: CogmanClient;
  let testing: CogmanTesting;

  beforeEach(async () => {
    moduleRef = await Test.createTestingModule({
      imports: [CogmanTestingModule.forRoot()],
      providers: [SyncHandler],
    }).compile();
    await moduleRef.init();
    cogman = moduleRef.get(CogmanClient);
    testing = moduleRef.get(CogmanTesting);
  });

  afterEach(() => moduleRef.close());

  it('deduplicates until the task is over', async () => {
    const first = await cogman.sendTask({ name: 'sync', payload: 1, unique: {} });
    const second = await cogman.sendTask({ name: 'sync', payload: 1, unique: {} });
    expect(second).toMatchObject({ taskId: first.taskId, deduplicated: true });
    expect(testing.sent('sync')).toHaveLength(1);
    await testing.drain();
    const third = await cogman.sendTask({ name: 'sync', payload: 1, unique: {} });
    expect(third).toMatchObject({ deduplicated: false });
  });

  it("holds a handler's ttl on the test clock", async () => {
    const first = await cogman.sendTask({ name: 'sync', primaryKey: 'a' });
    await testing.drain();
    expect(await cogman.sendTask({ name: 'sync', primaryKey: 'a' })).toMatchObject({
      taskId: first.taskId,
      deduplicated: true,
    });
    await testing.advance(60_000);
    expect(await cogman.sendTask({ name: 'sync', primaryKey: 'a' })).toMatchObject({
      deduplicated: false,
    });
  });
});
