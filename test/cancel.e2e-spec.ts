import type { Redis } from 'ioredis';
import {
  CogmanClient,
  TaskCancelledError,
  TaskHandler,
  TaskNotFoundError,
  TaskStatusConflictError,
  type CogmanTaskHandler,
  type TaskContext,
} from '@cogman/nestjs';
import { testHarness } from './support/harness';
import { openAmqp, openRedis, queueNames } from './support/services';
import { waitFor } from './support/wait';

const ran = new Set<string>();
const aborted = new Map<string, unknown>();

@TaskHandler('note')
class NoteHandler implements CogmanTaskHandler {
  handle(_payload: unknown, ctx: TaskContext) {
    ran.add(ctx.task.taskId);
  }
}

/** Runs until its signal aborts, and remembers why. */
@TaskHandler('until-abort')
class UntilAbort implements CogmanTaskHandler {
  async handle(_payload: unknown, ctx: TaskContext) {
    ran.add(ctx.task.taskId);
    await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
    aborted.set(ctx.task.taskId, ctx.signal.reason);
    throw ctx.signal.reason;
  }
}

@TaskHandler('fails')
class Fails implements CogmanTaskHandler {
  handle(_payload: unknown, ctx: TaskContext) {
    ran.add(ctx.task.taskId);
    throw new Error('try later');
  }
}

describe('Cancel and run now', () => {
  let redis: Redis;
  let client: CogmanClient;
  const harness = testHarness();
  const namespace = harness.namespace('cancel');

  beforeAll(async () => {
    redis = openRedis();
    client = (await harness.app({ namespace }, [NoteHandler, UntilAbort, Fails])).get(CogmanClient);
  });

  // One application serves every test here; everything closes at the end.
  afterAll(async () => {
    await harness.afterEach();
    redis.disconnect();
    await harness.afterAll();
  });

  const statusOf = async (taskId: string) => (await client.getTask(taskId))?.status;
  const becomes = (taskId: string, status: string) =>
    waitFor(`${taskId} to be ${status}`, async () => (await statusOf(taskId)) === status);

  describe('cancelTask', () => {
    it('cancels a scheduled task: it never runs', async () => {
      const task = await client.sendTask({ name: 'note', delay: 600 });
      await expect(client.cancelTask(task.taskId)).resolves.toMatchObject({ status: 'cancelled' });
      expect(await redis.zscore(`cogman:{${namespace}}:scheduled`, task.taskId)).toBeNull();
      // Past its due time, nothing ran (the schedule no longer holds it).
      const later = await client.sendTask({ name: 'note', delay: 700 });
      await becomes(later.taskId, 'success');
      expect(ran.has(task.taskId)).toBe(false);
      expect(await statusOf(task.taskId)).toBe('cancelled');
    });

    it('cancels a task waiting in its queue: the worker that receives it skips it', async () => {
      const ns = harness.namespace('cancel-queued');
      const producer = await harness.app({ namespace: ns, startWorker: false });
      const producerClient = producer.get(CogmanClient);
      const task = await producerClient.sendTask({ name: 'note' });
      await producerClient.cancelTask(task.taskId);

      await harness.app({ namespace: ns }, [NoteHandler]);
      const amqp = await openAmqp();
      const channel = await amqp.createChannel();
      const control = await producerClient.sendTask({ name: 'note' });
      await waitFor(
        'the control task to run',
        async () => (await producerClient.getTask(control.taskId))?.status === 'success',
      );
      expect((await channel.checkQueue(queueNames(ns).low[0])).messageCount).toBe(0);
      await amqp.close();
      expect(ran.has(task.taskId)).toBe(false);
      expect((await producerClient.getTask(task.taskId))?.status).toBe('cancelled');
    });

    it('aborts a running handler through its signal, with no retry', async () => {
      const task = await client.sendTask({
        name: 'until-abort',
        retry: 3,
        backoff: { type: 'fixed', delay: 0 },
      });
      await waitFor('the handler to start', () => ran.has(task.taskId));
      await becomes(task.taskId, 'in_progress');
      await expect(client.cancelTask(task.taskId)).resolves.toMatchObject({ status: 'cancelled' });
      await waitFor('the handler to be aborted', () => aborted.has(task.taskId));
      expect(aborted.get(task.taskId)).toBeInstanceOf(TaskCancelledError);
      expect(await client.getAttempts(task.taskId)).toHaveLength(1);
      expect(await statusOf(task.taskId)).toBe('cancelled');
    });

    it('aborts a handler running in another worker process', async () => {
      // A namespace of its own, where only that process consumes.
      const ns = harness.namespace('cancel-remote');
      const producer = await harness.app({ namespace: ns, startWorker: false });
      const remote = producer.get(CogmanClient);
      const worker = await harness.worker(ns);
      const task = await remote.sendTask({ name: 'wait-for-abort' });
      await waitFor('the other process to start it', async () =>
        (await redis.lrange(`test:${ns}:started`, 0, -1)).includes(`${task.taskId} ${worker.pid}`),
      );
      await remote.cancelTask(task.taskId);
      await waitFor('the other process to abort it', async () =>
        (await redis.lrange(`test:${ns}:aborted`, 0, -1)).includes(
          `${task.taskId} TaskCancelledError`,
        ),
      );
      expect((await remote.getTask(task.taskId))?.status).toBe('cancelled');
    });

    it('cancels the retry a failed task is waiting for', async () => {
      const task = await client.sendTask({
        name: 'fails',
        retry: 2,
        backoff: { type: 'fixed', delay: 60_000 },
      });
      const chain = await waitFor('the retry to be scheduled', async () => {
        const attempts = await client.getAttempts(task.taskId);
        return attempts.length === 2 && attempts[1].status === 'scheduled' ? attempts : null;
      });
      await expect(client.cancelTask(task.taskId)).resolves.toMatchObject({
        taskId: chain[1].taskId,
        status: 'cancelled',
      });
      expect((await client.getAttempts(task.taskId)).map((r) => r.status)).toEqual([
        'retry',
        'cancelled',
      ]);
    });

    it('refuses a finished task, an already cancelled one and an unknown one', async () => {
      const done = await client.sendTask({ name: 'note' });
      await becomes(done.taskId, 'success');
      await expect(client.cancelTask(done.taskId)).rejects.toThrow(
        `Cannot cancel task ${done.taskId}: it is success; it has already finished`,
      );
      const cancelled = await client.sendTask({ name: 'note', delay: 60_000 });
      await client.cancelTask(cancelled.taskId);
      await expect(client.cancelTask(cancelled.taskId)).rejects.toThrow(TaskStatusConflictError);
      await expect(client.cancelTask('00000000-0000-4000-8000-000000000000')).rejects.toThrow(
        TaskNotFoundError,
      );
    });
  });

  describe('runNow', () => {
    it('publishes a scheduled task at once', async () => {
      const task = await client.sendTask({ name: 'note', delay: 600_000 });
      await expect(client.runNow(task.taskId)).resolves.toMatchObject({ taskId: task.taskId });
      await becomes(task.taskId, 'success');
    });

    it('runs a retry waiting for its backoff at once', async () => {
      const task = await client.sendTask({
        name: 'fails',
        retry: 1,
        backoff: { type: 'fixed', delay: 600_000 },
      });
      const chain = await waitFor('the retry to be scheduled', async () => {
        const attempts = await client.getAttempts(task.taskId);
        return attempts.length === 2 && attempts[1].status === 'scheduled' ? attempts : null;
      });
      await client.runNow(task.taskId);
      await becomes(chain[1].taskId, 'failed');
    });

    it('refuses a task that is queued, running, finished or cancelled, and an unknown one', async () => {
      const running = await client.sendTask({ name: 'until-abort' });
      await becomes(running.taskId, 'in_progress');
      await expect(client.runNow(running.taskId)).rejects.toThrow(
        `Cannot run now task ${running.taskId}: it is in_progress; only a scheduled task can be run now`,
      );
      await client.cancelTask(running.taskId);
      await expect(client.runNow(running.taskId)).rejects.toThrow('it is cancelled');

      const done = await client.sendTask({ name: 'note' });
      await becomes(done.taskId, 'success');
      await expect(client.runNow(done.taskId)).rejects.toThrow('it is success');

      const ns = harness.namespace('run-now-queued');
      const producer = await harness.app({ namespace: ns, startWorker: false });
      const queued = await producer.get(CogmanClient).sendTask({ name: 'note' });
      await expect(producer.get(CogmanClient).runNow(queued.taskId)).rejects.toThrow(
        'it is queued',
      );

      await expect(client.runNow('00000000-0000-4000-8000-000000000000')).rejects.toThrow(
        TaskNotFoundError,
      );
    });
  });
});
