import type { INestApplicationContext } from '@nestjs/common';
import type { Channel, ChannelModel } from 'amqplib';
import type { Redis } from 'ioredis';
import {
  CogmanClient,
  TaskCancelledError,
  TaskHandler,
  type CogmanTaskHandler,
  type TaskContext,
} from '@cogman/nestjs';
import { TASK_LOG_STORE, type TaskLogStore } from '../libs/cogman/src/store/task-log.store';
import { toMessage } from '../libs/cogman/src/task';
import { TaskCancellation } from '../libs/cogman/src/worker/task-cancellation';
import { ChaosServices } from './support/chaos';
import { testHarness } from './support/harness';
import { openAmqp, openRedis, queueNames, REDIS_URI } from './support/services';
import { deferred, waitFor } from './support/wait';

/** Task id → how many times its handler started. */
const runs = new Map<string, number>();
const aborted = new Map<string, unknown>();
let gate = deferred();

@TaskHandler('note')
class Note implements CogmanTaskHandler {
  handle(_payload: unknown, ctx: TaskContext) {
    runs.set(ctx.task.taskId, (runs.get(ctx.task.taskId) ?? 0) + 1);
  }
}

/** Runs until the gate opens, or its signal aborts (and remembers why). */
@TaskHandler('gated')
class Gated implements CogmanTaskHandler {
  async handle(_payload: unknown, ctx: TaskContext) {
    runs.set(ctx.task.taskId, (runs.get(ctx.task.taskId) ?? 0) + 1);
    const abort = new Promise((resolve) =>
      ctx.signal.addEventListener('abort', resolve, { once: true }),
    );
    await Promise.race([gate.promise, abort]);
    if (ctx.signal.aborted) {
      aborted.set(ctx.task.taskId, ctx.signal.reason);
      throw ctx.signal.reason;
    }
  }
}

/** The statuses a store was asked to record for each task, and the tasks it was asked to read. */
function spyOnStore(app: INestApplicationContext) {
  const store = app.get<TaskLogStore>(TASK_LOG_STORE, { strict: false });
  const recorded = new Map<string, string[]>();
  const inspected: string[] = [];
  const record = store.record.bind(store);
  store.record = (change) => {
    recorded.set(change.taskId, [...(recorded.get(change.taskId) ?? []), change.status]);
    return record(change);
  };
  const inspect = store.inspect.bind(store);
  store.inspect = (taskId, options) => {
    inspected.push(taskId);
    return inspect(taskId, options);
  };
  return { store, recorded, inspected };
}

describe('The hot path: two Redis changes per task, and the guarantees that stay', () => {
  let redis: Redis;
  let amqp: ChannelModel;
  let channel: Channel;
  const harness = testHarness();
  const chaos = new ChaosServices();

  beforeAll(async () => {
    redis = openRedis();
    amqp = await openAmqp();
    channel = await amqp.createChannel();
  });

  beforeEach(() => {
    runs.clear();
    aborted.clear();
    gate = deferred();
  });

  afterEach(async () => {
    gate.resolve();
    await harness.afterEach();
  });

  afterAll(async () => {
    await chaos.stopAll();
    await amqp?.close();
    redis.disconnect();
    await harness.afterAll();
  });

  const ready = async (namespace: string) =>
    (await channel.checkQueue(queueNames(namespace).low[0])).messageCount;

  it('records a short task queued, then its outcome with startedAt, and reads nothing before its handler', async () => {
    const namespace = harness.namespace('hot-short');
    const app = await harness.app({ namespace }, [Note]);
    const { recorded, inspected } = spyOnStore(app);
    const client = app.get(CogmanClient);
    const tasks = await client.sendTasks(Array.from({ length: 20 }, () => ({ name: 'note' })));
    const ids = tasks.map((task) => task.taskId);
    await waitFor('every task to succeed', async () =>
      (await Promise.all(ids.map((id) => client.getTask(id)))).every(
        (r) => r?.status === 'success',
      ),
    );
    for (const id of ids) {
      // The producer's queued (after the confirm) and the worker's outcome, in either order.
      expect([...recorded.get(id)!].sort()).toEqual(['queued', 'success']);
      const record = await client.getTask(id);
      expect(record!.startedAt!.getTime()).toBeLessThanOrEqual(record!.updatedAt.getTime());
      expect(runs.get(id)).toBe(1);
    }
    expect(inspected).toEqual([]);
  });

  it('records in_progress for an attempt still running progressAfter after it started', async () => {
    const namespace = harness.namespace('hot-progress');
    const app = await harness.app({ namespace, progressAfter: 300 }, [Gated]);
    const client = app.get(CogmanClient);
    const task = await client.sendTask({ name: 'gated' });
    await waitFor('the handler to start', () => runs.get(task.taskId) === 1);
    const running = await waitFor('its late in_progress', async () => {
      const record = await client.getTask(task.taskId);
      return record?.status === 'in_progress' ? record : null;
    });
    expect(running.updatedAt.getTime() - running.startedAt!.getTime()).toBeGreaterThanOrEqual(300);
    gate.resolve();
    await waitFor(
      'its success',
      async () => (await client.getTask(task.taskId))?.status === 'success',
    );
    expect((await client.getTask(task.taskId))?.startedAt).toEqual(running.startedAt);
  });

  it('never runs a queued task that was cancelled, and reads no record to know it', async () => {
    const namespace = harness.namespace('hot-cancel-queued');
    const app = await harness.app({ namespace, lowPriorityConcurrency: 1, prefetchMultiplier: 1 }, [
      Gated,
      Note,
    ]);
    const { inspected } = spyOnStore(app);
    const client = app.get(CogmanClient);
    const blocker = await client.sendTask({ name: 'gated' });
    await waitFor('the blocker to run', () => runs.get(blocker.taskId) === 1);
    const queued = await client.sendTasks(Array.from({ length: 6 }, () => ({ name: 'note' })));
    for (const task of queued.slice(0, 3)) await client.cancelTask(task.taskId);
    gate.resolve();
    await waitFor('the others to succeed', async () =>
      (await Promise.all(queued.slice(3).map((t) => client.getTask(t.taskId)))).every(
        (r) => r?.status === 'success',
      ),
    );
    await waitFor('the queue to empty', async () => (await ready(namespace)) === 0);
    expect(queued.slice(0, 3).map((task) => runs.get(task.taskId))).toEqual([
      undefined,
      undefined,
      undefined,
    ]);
    for (const task of queued.slice(0, 3)) {
      expect((await client.getTask(task.taskId))?.status).toBe('cancelled');
    }
    expect(inspected).toEqual([]);
  });

  it('knows the cancellations made before it started', async () => {
    const namespace = harness.namespace('hot-cancel-before');
    const producer = (await harness.app({ namespace, startWorker: false })).get(CogmanClient);
    const tasks = await producer.sendTasks(Array.from({ length: 4 }, () => ({ name: 'note' })));
    await producer.cancelTask(tasks[0].taskId);
    await producer.cancelTask(tasks[1].taskId);
    const worker = await harness.app({ namespace }, [Note]);
    const { inspected } = spyOnStore(worker);
    await waitFor('the other two to succeed', async () =>
      (await Promise.all(tasks.slice(2).map((t) => producer.getTask(t.taskId)))).every(
        (r) => r?.status === 'success',
      ),
    );
    await waitFor('the queue to empty', async () => (await ready(namespace)) === 0);
    expect(runs.get(tasks[0].taskId)).toBeUndefined();
    expect(runs.get(tasks[1].taskId)).toBeUndefined();
    expect(inspected).toEqual([]);
  });

  it('loads the cancelled set again after its Redis connection comes back', async () => {
    const namespace = harness.namespace('hot-cancel-reconnect');
    const redisPort = Number(new URL(REDIS_URI).port || 6379);
    const proxy = await chaos.proxy({ port: redisPort });
    const worker = await harness.app(
      {
        namespace,
        redisUri: `redis://127.0.0.1:${proxy.port}/${new URL(REDIS_URI).pathname.slice(1) || 0}`,
        lowPriorityConcurrency: 1,
        prefetchMultiplier: 1,
      },
      [Gated, Note],
    );
    const cancellation = worker.get(TaskCancellation, { strict: false });
    const producer = (await harness.app({ namespace, startWorker: false })).get(CogmanClient);
    const blocker = await producer.sendTask({ name: 'gated' });
    await waitFor('the blocker to run', () => runs.get(blocker.taskId) === 1);
    const victim = await producer.sendTask({ name: 'note' });
    // The worker's Redis connections go, and the cancellation is made meanwhile: it misses the
    // channel's message.
    proxy.cut({ mode: 'reset' });
    await waitFor(
      'the worker to lose Redis',
      () => cancellation.isCancelled(victim.taskId) === undefined,
    );
    await producer.cancelTask(victim.taskId);
    proxy.restore();
    await waitFor(
      'the mirror to load the set again',
      () => cancellation.isCancelled(victim.taskId) === true,
    );
    gate.resolve();
    await waitFor('the queue to empty', async () => (await ready(namespace)) === 0);
    await waitFor(
      'the blocker to succeed',
      async () => (await producer.getTask(blocker.taskId))?.status === 'success',
    );
    expect(runs.get(victim.taskId)).toBeUndefined();
    expect((await producer.getTask(victim.taskId))?.status).toBe('cancelled');
  });

  it('aborts a running task through its signal although its record still shows queued', async () => {
    const namespace = harness.namespace('hot-cancel-running');
    const client = (await harness.app({ namespace }, [Gated])).get(CogmanClient);
    const task = await client.sendTask({ name: 'gated' });
    await waitFor('the handler to start', () => runs.get(task.taskId) === 1);
    expect((await client.getTask(task.taskId))?.status).toBe('queued');
    await client.cancelTask(task.taskId);
    await waitFor('the abort', () => aborted.has(task.taskId));
    expect(aborted.get(task.taskId)).toBeInstanceOf(TaskCancelledError);
    expect((await client.getTask(task.taskId))?.status).toBe('cancelled');
  });

  it('checks a redelivered message against its record: skips a finished attempt, runs an unfinished one', async () => {
    const namespace = harness.namespace('hot-redelivered');
    const producerApp = await harness.app({ namespace, startWorker: false });
    const producer = producerApp.get(CogmanClient);
    const store = producerApp.get<TaskLogStore>(TASK_LOG_STORE, { strict: false });
    const finished = await producer.sendTask({ name: 'note' });
    const unfinished = await producer.sendTask({ name: 'note' });
    // Take both messages and hand them back with a requeue: the broker redelivers them, flagged.
    const raw = await amqp.createChannel();
    const queue = queueNames(namespace).low[0];
    const taken = [await raw.get(queue), await raw.get(queue)];
    expect(taken.every(Boolean)).toBe(true);
    await store.record({ taskId: finished.taskId, status: 'success', at: new Date() });
    for (const msg of taken) if (msg) raw.nack(msg, false, true);
    await raw.close();

    await harness.app({ namespace }, [Note]);
    await waitFor(
      'the unfinished one to succeed',
      async () => (await producer.getTask(unfinished.taskId))?.status === 'success',
    );
    await waitFor('the queue to empty', async () => (await ready(namespace)) === 0);
    expect(runs.get(finished.taskId)).toBeUndefined();
    expect(runs.get(unfinished.taskId)).toBe(1);
    // Each was read, and its redelivery counted, in its record.
    for (const task of [finished, unfinished]) {
      expect(await redis.hget(`cogman:{${namespace}}:task:${task.taskId}`, 'redeliveries')).toBe(
        '1',
      );
    }
  });

  it('gives a message of a producer that writes no record (the Go library) a full record with its outcome', async () => {
    const namespace = harness.namespace('hot-foreign');
    const worker = await harness.app({ namespace }, [Note]);
    const { store } = spyOnStore(worker);
    const { content, options } = toMessage({
      taskId: 'go-task-1',
      name: 'note',
      originalTaskId: 'go-task-1',
      primaryKey: null,
      attempt: 1,
      priority: 'low',
      headers: {},
      createdAt: new Date(),
      payload: { contentType: 'application/octet-stream', body: Buffer.from('raw bytes') },
    });
    // As the Go library publishes: no content type.
    channel.sendToQueue(queueNames(namespace).low[0], content, {
      ...options,
      contentType: undefined,
    });
    await waitFor('its record', async () => (await store.get('go-task-1'))?.status === 'success');
    expect(await store.get('go-task-1')).toMatchObject({
      name: 'note',
      status: 'success',
      payload: Buffer.from('raw bytes'),
      startedAt: expect.any(Date),
    });
  });
});
