import type { Redis } from 'ioredis';
import {
  CogmanClient,
  TaskHandler,
  TaskUnrecoverableError,
  type CogmanTaskHandler,
  type TaskContext,
  type TaskRecord,
} from '@cogman/nestjs';
import { resolveCogmanOptions } from '../libs/cogman/src/config';
import { RedisTaskLogStore } from '../libs/cogman/src/store/redis-task-log.store';
import { testHarness } from './support/harness';
import { AMQP_URI, REDIS_URI, openRedis } from './support/services';
import { waitFor } from './support/wait';
import { stopWorkerProcess } from './support/worker-process';

/** Start time of every run, by task id (a list: a task that ran twice shows twice). */
const starts = new Map<string, number[]>();
const stamp = (ctx: TaskContext) => {
  const list = starts.get(ctx.task.taskId) ?? [];
  list.push(Date.now());
  starts.set(ctx.task.taskId, list);
};
const runsOf = (ids: string[]) => ids.map((id) => starts.get(id)?.length ?? 0);

@TaskHandler('stamp')
class StampHandler implements CogmanTaskHandler {
  handle(_payload: unknown, ctx: TaskContext) {
    stamp(ctx);
  }
}

@TaskHandler('always-fails')
class AlwaysFails implements CogmanTaskHandler {
  handle(_payload: unknown, ctx: TaskContext) {
    stamp(ctx);
    throw new Error(`attempt ${ctx.task.attempt} failed`);
  }
}

@TaskHandler('custom-backoff', { retry: 2, backoff: (attempt) => attempt * 300 })
class CustomBackoff implements CogmanTaskHandler {
  handle(_payload: unknown, ctx: TaskContext) {
    stamp(ctx);
    throw new Error('nope');
  }
}

@TaskHandler('permanent')
class Permanent implements CogmanTaskHandler {
  handle(_payload: unknown, ctx: TaskContext) {
    stamp(ctx);
    throw new TaskUnrecoverableError('the input can never work');
  }
}

/** Ignores its signal entirely and never finishes. */
@TaskHandler('hang', { timeout: 300, retry: 1, backoff: { type: 'fixed', delay: 0 } })
class Hang implements CogmanTaskHandler {
  handle(_payload: unknown, ctx: TaskContext) {
    stamp(ctx);
    return new Promise(() => {});
  }
}

const handlers = [StampHandler, AlwaysFails, CustomBackoff, Permanent, Hang];

describe('Delayed tasks, backoff and timeouts', () => {
  let redis: Redis;
  const harness = testHarness();

  beforeAll(() => {
    redis = openRedis();
  });

  afterEach(() => harness.afterEach());

  afterAll(async () => {
    redis.disconnect();
    await harness.afterAll();
  });

  const namespace = (label: string) => harness.namespace(label);

  async function app(options: Parameters<typeof harness.app>[0], withHandlers = true) {
    return (await harness.app(options, withHandlers ? handlers : [])).get(CogmanClient);
  }

  const finished = (client: CogmanClient, ids: string[], statuses = ['success']) =>
    waitFor(
      `${ids.length} task(s) to finish`,
      async () => {
        const records = await Promise.all(ids.map((id) => client.getTask(id)));
        return records.every((r) => r && statuses.includes(r.status))
          ? (records as TaskRecord[])
          : null;
      },
      { timeout: 60_000, interval: 250 },
    );

  it('runs tasks due in the past and now at once, later ones no earlier than due and within about a second', async () => {
    const client = await app({ namespace: namespace('delay') });
    const past = await client.sendTask({ name: 'stamp', runAt: new Date(Date.now() - 10_000) });
    const now = await client.sendTask({ name: 'stamp', delay: 0 });
    const soon = await client.sendTask({ name: 'stamp', delay: 1500 });
    const at = await client.sendTask({ name: 'stamp', runAt: new Date(Date.now() + 2500) });
    expect([past.status, now.status, soon.status, at.status]).toEqual([
      'queued',
      'queued',
      'scheduled',
      'scheduled',
    ]);
    expect((await client.getTask(soon.taskId))?.runAt).toEqual(soon.runAt);

    await finished(client, [past.taskId, now.taskId, soon.taskId, at.taskId]);
    for (const task of [soon, at]) {
      const [start] = starts.get(task.taskId)!;
      expect(start).toBeGreaterThanOrEqual(task.runAt!.getTime());
      // The scheduler checks every 200 ms; a generous bound for a busy machine.
      expect(start - task.runAt!.getTime()).toBeLessThan(2000);
    }
  });

  it('keeps a task delayed beyond redisTtl until it is due, and runs it', async () => {
    const ns = namespace('delay-ttl');
    const client = await app({ namespace: ns, redisTtl: 1000 });
    const later = await client.sendTask({ name: 'stamp', delay: 3000 });
    expect(later.status).toBe('scheduled');
    const key = `cogman:{${ns}}:task:${later.taskId}`;
    // Its record lives until it is due, and redisTtl after that.
    expect(await redis.pttl(key)).toBeGreaterThan(3000);
    const [record] = await finished(client, [later.taskId]);
    expect(starts.get(later.taskId)![0]).toBeGreaterThanOrEqual(later.runAt!.getTime());
    expect(record.status).toBe('success');
  });

  it('publishes each of many delayed tasks once with two scheduler processes', async () => {
    const ns = namespace('two-schedulers');
    const producer = await app({ namespace: ns, startWorker: false, startScheduler: false }, false);
    for (let i = 0; i < 2; i++) {
      await harness.worker(ns, { COGMAN_START_WORKER: 'false' });
    }
    await app({ namespace: ns, startScheduler: false });
    const sent = await producer.sendTasks(
      Array.from({ length: 1000 }, (_, i) => ({ name: 'stamp', delay: 500 + (i % 10) * 100 })),
    );
    expect(sent.every((task) => task.status === 'scheduled')).toBe(true);
    const ids = sent.map((task) => task.taskId);
    await finished(producer, ids);
    expect(runsOf(ids).filter((runs) => runs !== 1)).toEqual([]);
    expect(await redis.zcard(`cogman:{${ns}}:scheduled`)).toBe(0);
    expect(await redis.zcard(`cogman:{${ns}}:scheduled:claimed`)).toBe(0);
  });

  it('loses nothing when a scheduler dies holding claims it never published', async () => {
    const ns = namespace('dead-claim');
    const producer = await app({ namespace: ns, startWorker: false, startScheduler: false }, false);
    const sent = await producer.sendTasks(
      Array.from({ length: 50 }, () => ({ name: 'stamp', delay: 200 })),
    );
    const ids = sent.map((task) => task.taskId);
    // What a scheduler leaves behind when it dies between claiming and publishing.
    const options = resolveCogmanOptions({ amqpUri: AMQP_URI, redisUri: REDIS_URI, namespace: ns });
    const crashed = new RedisTaskLogStore(redis, options);
    const claimed = await waitFor('the tasks to be due and claimed', async () => {
      const due = await crashed.claimDue(new Date(), 1000, 1500);
      return due.length === 50 ? due : null;
    });
    expect(new Set(claimed)).toEqual(new Set(ids));

    await app({ namespace: ns, requestTimeout: 500 });
    await finished(producer, ids);
    expect(runsOf(ids).filter((runs) => runs !== 1)).toEqual([]);
  });

  it('loses nothing when a scheduler process is killed with SIGKILL mid-run', async () => {
    const ns = namespace('killed-scheduler');
    const producer = await app({ namespace: ns, startWorker: false, startScheduler: false }, false);
    const sent = await producer.sendTasks(
      Array.from({ length: 1500 }, () => ({ name: 'stamp', delay: 300 })),
    );
    const ids = sent.map((task) => task.taskId);
    const scheduler = await harness.worker(ns, {
      COGMAN_START_WORKER: 'false',
      COGMAN_REQUEST_TIMEOUT: '500',
    });
    await waitFor(
      'the scheduler to claim tasks',
      async () => (await redis.zcard(`cogman:{${ns}}:scheduled:claimed`)) > 0,
      {
        interval: 5,
      },
    );
    await stopWorkerProcess(scheduler, 'SIGKILL');
    // It died with work left: claims it held, and tasks it had not reached.
    const left =
      (await redis.zcard(`cogman:{${ns}}:scheduled`)) +
      (await redis.zcard(`cogman:{${ns}}:scheduled:claimed`));
    expect(left).toBeGreaterThan(0);

    await app({ namespace: ns, requestTimeout: 500 });
    await finished(producer, ids);
    const runs = runsOf(ids);
    expect(runs.filter((count) => count === 0)).toEqual([]);
    // At least once: a task published in the instant before the kill may run twice, never more.
    expect(Math.max(...runs)).toBeLessThanOrEqual(2);
  });

  describe('retry backoff', () => {
    let client: CogmanClient;
    beforeEach(async () => {
      client = await app({ namespace: namespace('backoff') });
    });

    async function chain(taskId: string, attempts: number, last = 'failed') {
      return waitFor(
        `${attempts} attempts`,
        async () => {
          const records = await client.getAttempts(taskId);
          return records.length === attempts && records[attempts - 1].status === last
            ? records
            : null;
        },
        { timeout: 30_000, interval: 50 },
      );
    }

    /** Each retry is due `waits[i]` after the attempt before it failed, and ran no earlier. */
    function expectSpacing(records: TaskRecord[], waits: (wait: number) => boolean) {
      for (let i = 1; i < records.length; i++) {
        const due = records[i].runAt!.getTime();
        const failedAt = records[i - 1].updatedAt.getTime();
        // The next attempt is scheduled just before the failed one is recorded `retry`.
        expect(waits(due - failedAt)).toBe(true);
        expect(starts.get(records[i].taskId)![0]).toBeGreaterThanOrEqual(due);
      }
    }

    it('waits a fixed delay between attempts', async () => {
      const task = await client.sendTask({
        name: 'always-fails',
        retry: 2,
        backoff: { type: 'fixed', delay: 400 },
      });
      const records = await chain(task.taskId, 3);
      expect(records.map((r) => r.status)).toEqual(['retry', 'retry', 'failed']);
      expectSpacing(records, (wait) => wait > 350 && wait <= 400);
    });

    it('doubles the wait with an exponential policy, and keeps it within bounds with jitter', async () => {
      const exact = await client.sendTask({
        name: 'always-fails',
        retry: 2,
        backoff: { type: 'exponential', delay: 200, jitter: false },
      });
      const records = await chain(exact.taskId, 3);
      const waits = records
        .slice(1)
        .map((r, i) => r.runAt!.getTime() - records[i].updatedAt.getTime());
      expect(waits[0]).toBeGreaterThan(150);
      expect(waits[0]).toBeLessThanOrEqual(200);
      expect(waits[1]).toBeGreaterThan(350);
      expect(waits[1]).toBeLessThanOrEqual(400);

      const jittered = await client.sendTask({
        name: 'always-fails',
        retry: 1,
        backoff: { type: 'exponential', delay: 600 },
      });
      expectSpacing(await chain(jittered.taskId, 2), (wait) => wait > 250 && wait <= 600);
    });

    it("uses the handler's backoff function when the task sets none", async () => {
      const task = await client.sendTask({ name: 'custom-backoff' });
      const records = await chain(task.taskId, 3);
      expect(records.map((r) => r.retry)).toEqual([2, 2, 2]);
      const waits = records
        .slice(1)
        .map((r, i) => r.runAt!.getTime() - records[i].updatedAt.getTime());
      expect(waits[0]).toBeGreaterThan(250);
      expect(waits[0]).toBeLessThanOrEqual(300);
      expect(waits[1]).toBeGreaterThan(550);
      expect(waits[1]).toBeLessThanOrEqual(600);
    });

    it('stops at a permanent error', async () => {
      const task = await client.sendTask({
        name: 'permanent',
        retry: 5,
        backoff: { type: 'fixed', delay: 0 },
      });
      const [record] = await chain(task.taskId, 1);
      expect(record).toMatchObject({ status: 'failed', failError: 'the input can never work' });
      expect(starts.get(task.taskId)).toHaveLength(1);
    });
  });

  it('times out a hanging handler, retries it, and keeps processing other tasks meanwhile', async () => {
    const client = await app({ namespace: namespace('timeout'), lowPriorityConcurrency: 1 });
    const hanging = await client.sendTask({ name: 'hang' });
    const others = await client.sendTasks(Array.from({ length: 10 }, () => ({ name: 'stamp' })));
    // With one slot, these can only run if the hanging handler's slot is freed.
    await finished(
      client,
      others.map((task) => task.taskId),
    );
    const records = await waitFor('both attempts to time out', async () => {
      const chain = await client.getAttempts(hanging.taskId);
      return chain.length === 2 && chain[1].status === 'failed' ? chain : null;
    });
    expect(records.map((r) => [r.status, r.failError])).toEqual([
      ['retry', 'Task timed out after 300 ms'],
      ['failed', 'Task timed out after 300 ms'],
    ]);

    // A timeout given at send time wins over the handler's.
    const short = await client.sendTask({ name: 'hang', timeout: 100, retry: 0 });
    const [record] = await finished(client, [short.taskId], ['failed']);
    expect(record.failError).toBe('Task timed out after 100 ms');
  });
});
