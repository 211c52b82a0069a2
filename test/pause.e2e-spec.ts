import type { Redis } from 'ioredis';
import {
  CogmanClient,
  CogmanHealthIndicator,
  TaskHandler,
  TaskInvalidError,
  type CogmanTaskHandler,
  type TaskContext,
} from '@cogman/nestjs';
import { testHarness } from './support/harness';
import { call, startHttpApp } from './support/http';
import { openAmqp, openRedis, queueNames } from './support/services';
import { runCounts, stopWorkerProcess } from './support/worker-process';
import { deferred, waitFor } from './support/wait';

const started: string[] = [];
let gate = deferred();

/** Records that it started, then waits for the spec to open the gate. */
@TaskHandler('gated')
class GatedHandler implements CogmanTaskHandler {
  async handle(_payload: unknown, ctx: TaskContext) {
    started.push(ctx.task.taskId);
    await gate.promise;
  }
}

describe('Pausing and resuming', () => {
  let redis: Redis;
  const harness = testHarness();

  beforeAll(() => {
    redis = openRedis();
  });

  afterEach(async () => {
    gate.resolve();
    await harness.afterEach();
  });

  afterAll(async () => {
    redis.disconnect();
    await harness.afterAll();
  });

  /** Ready messages and consumers of a queue, as the broker counts them. */
  async function queueState(queue: string) {
    const amqp = await openAmqp();
    try {
      const channel = await amqp.createChannel();
      const { messageCount, consumerCount } = await channel.checkQueue(queue);
      return { ready: messageCount, consumers: consumerCount };
    } finally {
      await amqp.close();
    }
  }

  it('holds a backlog while paused: no task starts, all run once after resume; the queues take new tasks', async () => {
    started.length = 0;
    gate = deferred();
    gate.resolve();
    const namespace = harness.namespace('pause-backlog');
    const worker = await harness.app({ namespace }, [GatedHandler]);
    const producer = await harness.app({ namespace, startWorker: false });
    const client = producer.get(CogmanClient);
    const { low } = queueNames(namespace);

    const state = await client.pause('low');
    expect(state.low).toMatchObject({ paused: true, since: expect.any(Date) });
    expect(state.high).toEqual({ paused: false, since: null });
    // The worker stops consuming the paused priority within about a second.
    await waitFor(
      'the worker to pause',
      () => worker.get(CogmanClient).services().paused[0] === 'low',
      {
        timeout: 3000,
      },
    );
    await waitFor(
      'the broker to count no consumer',
      async () => (await queueState(low[0])).consumers === 0,
    );

    const tasks = await client.sendTasks(
      Array.from({ length: 20 }, (_, n) => ({ name: 'gated', payload: { n } })),
    );
    expect(tasks.every((task) => task.status === 'queued')).toBe(true);
    // With no consumer on the queue, the broker holds every message: none can start.
    await waitFor('the backlog in the queue', async () => (await queueState(low[0])).ready === 20);
    expect(started).toEqual([]);
    expect((await client.queues()).paused).toEqual(['low']);

    // Paused is shown, and is not unhealthy.
    const { cogman } = await worker.get(CogmanHealthIndicator).isHealthy('cogman');
    expect(cogman).toMatchObject({ status: 'up', consumers: 'up', paused: ['low'] });
    expect(worker.get(CogmanClient).services().worker).toMatchObject({
      consumers: 1,
      consumedQueues: 1,
    });

    await client.resume('low');
    await waitFor('every task to succeed', async () => {
      const records = await Promise.all(tasks.map((task) => client.getTask(task.taskId)));
      return records.every((record) => record?.status === 'success');
    });
    expect(started.sort()).toEqual(tasks.map((task) => task.taskId).sort());
    expect(await client.pauses()).toEqual({
      high: { paused: false, since: null },
      low: { paused: false, since: null },
    });
  });

  it('lets running tasks finish and hands back those read ahead, without a redelivery loop', async () => {
    started.length = 0;
    gate = deferred();
    const namespace = harness.namespace('pause-running');
    const app = await harness.app({ namespace, lowPriorityConcurrency: 1 }, [GatedHandler]);
    const client = app.get(CogmanClient);
    const { low } = queueNames(namespace);
    const tasks = await client.sendTasks(Array.from({ length: 5 }, () => ({ name: 'gated' })));
    await waitFor('the first task to start', () => started.length === 1);

    await client.pause();
    await waitFor('the read-ahead deliveries back in the queue', async () => {
      const { ready, consumers } = await queueState(low[0]);
      return consumers === 0 && ready === 4;
    });
    gate.resolve();
    await waitFor('the running task to succeed', async () => {
      return (await client.getTask(started[0]))?.status === 'success';
    });
    expect(started).toHaveLength(1);
    // Handed back as new deliveries, not redelivered: nothing counts towards the delivery limit.
    for (const task of tasks) {
      expect(
        await redis.hget(`cogman:{${namespace}}:task:${task.taskId}`, 'redeliveries'),
      ).toBeNull();
    }
    expect((await queueState(low[0])).ready).toBe(4);

    await client.resume();
    await waitFor('every task to succeed', async () => {
      const records = await Promise.all(tasks.map((task) => client.getTask(task.taskId)));
      return records.every((record) => record?.status === 'success');
    });
    expect(new Set(started).size).toBe(5);
    expect(started).toHaveLength(5);
  });

  it('reaches every worker process, and a worker restarted while paused stays paused', async () => {
    const namespace = harness.namespace('pause-processes');
    const producer = await harness.app({ namespace, startWorker: false });
    const client = producer.get(CogmanClient);
    const { high, low } = queueNames(namespace);
    const first = await harness.worker(namespace);
    const second = await harness.worker(namespace);
    await waitFor('two consumers', async () => (await queueState(low[0])).consumers === 2);

    await client.pause('low');
    await waitFor(
      'both workers to stop consuming low',
      async () => (await queueState(low[0])).consumers === 0,
      { timeout: 3000 },
    );
    expect((await queueState(high[0])).consumers).toBe(2);

    // High priority tasks still run while low is paused.
    const urgent = await client.sendTask({ name: 'work', priority: 'high' });
    const tasks = await client.sendTasks(Array.from({ length: 10 }, () => ({ name: 'work' })));
    await waitFor('the high priority task to run', async () => {
      return (await runCounts(redis, namespace, [urgent.taskId])).get(urgent.taskId) === 1;
    });

    // Both workers die and new ones start: the pause, kept in Redis, holds them.
    await Promise.all([stopWorkerProcess(first, 'SIGKILL'), stopWorkerProcess(second, 'SIGKILL')]);
    const third = await harness.worker(namespace);
    await waitFor('the new worker to consume high', async () => {
      return (await queueState(high[0])).consumers === 1;
    });
    const queued = await queueState(low[0]);
    expect(queued).toEqual({ ready: 10, consumers: 0 });
    expect(
      await runCounts(
        redis,
        namespace,
        tasks.map((task) => task.taskId),
      ),
    ).toEqual(new Map());
    expect([first.pid, second.pid]).not.toContain(third.pid);

    await client.resume('low');
    await waitFor('every task to run once', async () => {
      const runs = await runCounts(
        redis,
        namespace,
        tasks.map((task) => task.taskId),
      );
      return runs.size === 10 && [...runs.values()].every((count) => count === 1);
    });
  });

  it('refuses an unknown priority', async () => {
    const namespace = harness.namespace('pause-invalid');
    const client = (await harness.app({ namespace, startWorker: false })).get(CogmanClient);
    await expect(client.pause('urgent' as never)).rejects.toBeInstanceOf(TaskInvalidError);
  });

  it('is operated over REST: pause, resume, state; /queues and /health show it', async () => {
    const namespace = harness.namespace('pause-rest');
    const { app, api } = await startHttpApp({ namespace });
    try {
      const paused = await call(`${api}/queues/high/pause`, { method: 'POST' });
      expect(paused.status).toBe(200);
      expect(paused.body).toEqual({
        high: { paused: true, since: expect.any(String) },
        low: { paused: false, since: null },
      });
      expect((await call(`${api}/queues/pause`, { method: 'POST' })).body.low.paused).toBe(true);
      expect((await call(`${api}/queues/pauses`)).body).toMatchObject({
        high: { paused: true },
        low: { paused: true },
      });
      expect((await call(`${api}/queues`)).body.paused).toEqual(['high', 'low']);
      await waitFor('the worker to pause', async () => {
        const health = await call(`${api}/health`);
        return health.status === 200 && health.body.paused?.length === 2 && health.body;
      });
      const bad = await call(`${api}/queues/urgent/pause`, { method: 'POST' });
      expect(bad.status).toBe(400);
      expect(bad.body.code).toBe('COGMAN_REQUEST_INVALID');

      expect((await call(`${api}/queues/low/resume`, { method: 'POST' })).body.low.paused).toBe(
        false,
      );
      const resumed = await call(`${api}/queues/resume`, { method: 'POST' });
      expect(resumed.body).toEqual({
        high: { paused: false, since: null },
        low: { paused: false, since: null },
      });
      await waitFor('the worker to consume again', async () => {
        const health = await call(`${api}/health`);
        return health.status === 200 && health.body.paused === undefined;
      });
    } finally {
      await app.close();
    }
  });
});
