import type { Redis } from 'ioredis';
import { buildTask } from '../libs/cogman/src/task';
import { resolveCogmanOptions } from '../libs/cogman/src/config';
import { RedisTaskLogStore } from '../libs/cogman/src/store/redis-task-log.store';
import { TASK_STATUSES, type TaskStatus } from '../libs/cogman/src/task';
import { AMQP_URI, REDIS_URI, cleanUp, openRedis, uniqueNamespace } from './support/services';

describe('RedisTaskLogStore (real Redis)', () => {
  const namespace = uniqueNamespace('redis-log');
  const redisTtl = 60_000;
  let redis: Redis;
  let store: RedisTaskLogStore;

  beforeAll(() => {
    redis = openRedis();
    redis.options.enableAutoPipelining = true;
    store = new RedisTaskLogStore(
      redis,
      resolveCogmanOptions({ amqpUri: AMQP_URI, redisUri: REDIS_URI, namespace, redisTtl }),
    );
  });

  afterAll(async () => {
    redis.disconnect();
    await cleanUp(namespace);
  });

  it('keeps the most advanced status whatever order concurrent writers land in', async () => {
    const statuses: TaskStatus[] = ['initiated', 'queued', 'in_progress', 'success'];
    const tasks = Array.from(
      { length: 200 },
      () => buildTask({ name: 'race', payload: { x: 1 } }).task,
    );
    // Every permutation of writers, fired at once (pipelined), for many tasks.
    await Promise.all(
      tasks.flatMap((task, i) => {
        const order = [...statuses].sort(() => (i % 2 ? 1 : -1) * (Math.random() - 0.5));
        return order.map((status) =>
          store.record({ taskId: task.taskId, status, at: new Date(), task }),
        );
      }),
    );
    for (const task of tasks) {
      const record = await store.get(task.taskId);
      expect(record).toMatchObject({
        status: 'success',
        name: 'race',
        payload: { x: 1 },
        originalTaskId: task.taskId,
      });
    }
  });

  it('never lets a late queued overwrite success (the Go D8 race)', async () => {
    const task = buildTask({ name: 'late' }).task;
    await store.record({ taskId: task.taskId, status: 'initiated', at: new Date(), task });
    await store.record({ taskId: task.taskId, status: 'success', at: new Date(), duration: 12.5 });
    const late = await store.record({ taskId: task.taskId, status: 'queued', at: new Date() });
    expect(late).toMatchObject({ applied: false, previous: 'success' });
    expect(await store.get(task.taskId)).toMatchObject({ status: 'success', duration: 12.5 });
  });

  it('sets the TTL in the same step as every write', async () => {
    const task = buildTask({ name: 'ttl' }).task;
    await store.record({ taskId: task.taskId, status: 'initiated', at: new Date(), task });
    const ttl = await redis.pttl(store.key(task.taskId));
    expect(ttl).toBeGreaterThan(redisTtl - 5_000);
    expect(ttl).toBeLessThanOrEqual(redisTtl);
    // A change that does not apply still leaves a TTL (never a key without one).
    await redis.persist(store.key(task.taskId));
    await store.record({ taskId: task.taskId, status: 'initiated', at: new Date() });
    expect(await redis.pttl(store.key(task.taskId))).toBeGreaterThan(0);
  });

  it('fills in a record first written by a later status (a Go message, an expired key)', async () => {
    const task = buildTask({
      name: 'late-describe',
      primaryKey: 'pk',
      retry: 2,
      payload: Buffer.from([0, 255]),
    }).task;
    const first = await store.record({ taskId: task.taskId, status: 'success', at: new Date() });
    expect(first).toEqual({ applied: true, previous: null, described: false });
    const describing = await store.record({
      taskId: task.taskId,
      status: 'initiated',
      at: new Date(),
      task,
    });
    expect(describing).toEqual({ applied: false, previous: 'success', described: true });
    // Described once: a later description (here a different one) changes nothing.
    const other = buildTask({ name: 'other', payload: { y: 2 } }).task;
    const again = await store.record({
      taskId: task.taskId,
      status: 'in_progress',
      at: new Date(),
      task: { ...other, taskId: task.taskId },
    });
    expect(again).toEqual({ applied: false, previous: 'success', described: true });
    const plain = await store.record({ taskId: task.taskId, status: 'failed', at: new Date() });
    expect(plain).toEqual({ applied: false, previous: 'success', described: true });
    const record = await store.get(task.taskId);
    expect(record).toMatchObject({
      status: 'success',
      name: 'late-describe',
      primaryKey: 'pk',
      retry: 2,
    });
    expect(record!.payload).toEqual(Buffer.from([0, 255]));
  });

  it('stores every status under the namespaced key', async () => {
    for (const status of TASK_STATUSES) {
      const task = buildTask({ name: status }).task;
      expect(store.key(task.taskId)).toBe(`cogman:{${namespace}}:task:${task.taskId}`);
      await store.record({ taskId: task.taskId, status, at: new Date(), task });
      expect((await store.get(task.taskId))?.status).toBe(status);
    }
  });

  it('stores any text as it was written, and one change with a lone surrogate spoils none of its call', async () => {
    const odd = 'quote " backslash \\ \\u00e9 newline \n tab \t nul \u0000 é 😀 中文';
    const task = buildTask({
      name: `name ${odd}`,
      primaryKey: `pk ${odd}`,
      headers: { note: odd },
      payload: { text: odd },
    }).task;
    const lone = buildTask({ name: 'lone' }).task;
    // One call (same tick): the odd texts, and an error message with a lone surrogate.
    const results = await Promise.all([
      store.record({ taskId: task.taskId, status: 'initiated', at: new Date(), task }),
      store.record({ taskId: lone.taskId, status: 'initiated', at: new Date(), task: lone }),
      store.record({
        taskId: lone.taskId,
        status: 'failed',
        at: new Date(),
        failError: `broken \ud800 text ${odd}`,
      }),
    ]);
    expect(results.map((result) => result.applied)).toEqual([true, true, true]);
    expect(await store.get(task.taskId)).toMatchObject({
      name: `name ${odd}`,
      primaryKey: `pk ${odd}`,
      headers: { note: odd },
      payload: { text: odd },
    });
    // As Redis stored it before: the lone surrogate becomes U+FFFD, the rest is unchanged.
    expect(await store.get(lone.taskId)).toMatchObject({
      status: 'failed',
      failError: `broken \ufffd text ${odd}`,
    });
  });
});
