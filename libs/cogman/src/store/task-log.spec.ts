import { resolveCogmanOptions, RESOLVED_OPTIONS } from '../config';
import { Test } from '@nestjs/testing';
import { buildTask } from '../task';
import { ArchiveBufferFullError } from '../errors';
import type { TaskEnvelope, TaskRecord } from '../task';
import { InMemoryTaskLogStore } from '../testing/in-memory-task-log.store';
import { TASK_ARCHIVE, type TaskArchive } from './task-archive';
import { TaskLog } from './task-log';
import { TASK_LOG_STORE, type TaskStatusChange } from './task-log.store';

/** An archive in memory: records what it is given, answers `get` from a map. */
class FakeArchive implements Partial<TaskArchive> {
  connected = true;
  readonly written: TaskStatusChange[] = [];
  readonly records = new Map<string, TaskRecord>();
  refuse = false;

  write(change: TaskStatusChange): Promise<void> {
    if (this.refuse) return Promise.reject(new ArchiveBufferFullError(1));
    this.written.push(change);
    return Promise.resolve();
  }

  get(taskId: string): Promise<TaskRecord | null> {
    if (!this.connected) return Promise.reject(new Error('not connected'));
    return Promise.resolve(this.records.get(taskId) ?? null);
  }
}

function recordOf(task: TaskEnvelope): TaskRecord {
  const { payload: _payload, timeout: _timeout, backoff: _backoff, retry, ...info } = task;
  return {
    ...info,
    retry: retry ?? 0,
    runAt: null,
    payload: null,
    status: 'success',
    failError: null,
    duration: 1,
    startedAt: null,
    updatedAt: new Date(),
  };
}

describe('TaskLog', () => {
  let log: TaskLog;
  let store: InMemoryTaskLogStore;
  let archive: FakeArchive;

  /** A TaskLog over this test's store and archive. */
  async function createLog(options: { requestTimeout?: number } = {}): Promise<TaskLog> {
    const module = await Test.createTestingModule({
      providers: [
        TaskLog,
        { provide: TASK_LOG_STORE, useValue: store },
        { provide: TASK_ARCHIVE, useValue: archive },
        {
          provide: RESOLVED_OPTIONS,
          useValue: resolveCogmanOptions({
            amqpUri: 'amqp://x',
            redisUri: 'redis://x',
            ...options,
          }),
        },
      ],
    }).compile();
    return module.get(TaskLog);
  }

  beforeEach(async () => {
    store = new InMemoryTaskLogStore();
    archive = new FakeArchive();
    log = await createLog();
  });

  it('records every change in Redis and in the archive', async () => {
    const task = buildTask({ name: 'x' }).task;
    await log.record({ taskId: task.taskId, status: 'initiated', at: new Date(), task });
    await log.record({ taskId: task.taskId, status: 'queued', at: new Date() });
    expect(store.statuses(task.taskId)).toEqual(['initiated', 'queued']);
    expect(archive.written.map((change) => change.status)).toEqual(['initiated', 'queued']);
  });

  it('never fails a change the archive refuses, unless asked to wait for the archive', async () => {
    archive.refuse = true;
    const task = buildTask({ name: 'x' }).task;
    const change = { taskId: task.taskId, status: 'initiated' as const, at: new Date(), task };
    await expect(log.record(change)).resolves.toMatchObject({ applied: true });
    const queued = { taskId: task.taskId, status: 'queued' as const, at: new Date() };
    await expect(log.record(queued, { durable: true })).rejects.toBeInstanceOf(
      ArchiveBufferFullError,
    );
  });

  it('reads from the archive what Redis no longer has, while the archive is connected', async () => {
    const task = buildTask({ name: 'old' }).task;
    archive.records.set(task.taskId, recordOf(task));
    expect(await log.get(task.taskId)).toMatchObject({ taskId: task.taskId, status: 'success' });
    archive.connected = false;
    expect(await log.get(task.taskId)).toBeNull();
  });

  describe('on the task path (deferrable)', () => {
    const wait = 50;

    beforeEach(async () => {
      log = await createLog({ requestTimeout: 2 * wait });
    });

    afterEach(() => log.close());

    it("returns Redis's answer when it comes in time", async () => {
      const task = buildTask({ name: 'x' }).task;
      const change = { taskId: task.taskId, status: 'queued' as const, at: new Date(), task };
      await expect(log.record(change, { deferrable: true })).resolves.toEqual({
        applied: true,
        previous: null,
        described: true,
      });
      expect(log.pendingWrites).toBe(0);
    });

    it('goes on after one to two beats when Redis does not answer; the write lands later', async () => {
      const task = buildTask({ name: 'x' }).task;
      let answer!: () => void;
      const record = store.record.bind(store);
      jest
        .spyOn(store, 'record')
        .mockImplementationOnce(
          (change) => new Promise((resolve) => (answer = () => resolve(record(change)))),
        );
      const change = { taskId: task.taskId, status: 'queued' as const, at: new Date(), task };
      const began = performance.now();
      await expect(log.record(change, { deferrable: true })).resolves.toMatchObject({
        applied: true,
        deferred: true,
      });
      const waited = performance.now() - began;
      expect(waited).toBeGreaterThanOrEqual(wait - 5);
      expect(waited).toBeLessThan(2 * wait + 1000);
      // The archive has it already; Redis gets it when it answers.
      expect(archive.written).toHaveLength(1);
      expect(log.pendingWrites).toBe(1);
      answer();
      await log.flush(1000);
      expect(log.pendingWrites).toBe(0);
      expect(store.statuses(task.taskId)).toEqual(['queued']);
    });
  });
});
