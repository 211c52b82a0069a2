import type { Redis } from 'ioredis';
import {
  CogmanClient,
  TaskHandler,
  TaskInvalidError,
  type CogmanTaskHandler,
  type TaskContext,
} from '@cogman/nestjs';
import { testHarness } from './support/harness';
import { call, startHttpApp } from './support/http';
import {
  startProducerProcess,
  stopProducerProcess,
  type ProducerProcess,
} from './support/producer-process';
import { openRedis } from './support/services';
import { deferred, waitFor } from './support/wait';

let gate = deferred();
const runs: string[] = [];

/** Waits for the spec to open the gate. */
@TaskHandler('hold')
class HoldHandler implements CogmanTaskHandler {
  async handle(_payload: unknown, ctx: TaskContext) {
    runs.push(ctx.task.taskId);
    await gate.promise;
  }
}

/** Fails every attempt. */
@TaskHandler('flaky')
class FlakyHandler implements CogmanTaskHandler {
  handle(_payload: unknown, ctx: TaskContext) {
    runs.push(ctx.task.taskId);
    throw new Error('down');
  }
}

/** Unique by default, keyed on the primary key. */
@TaskHandler('sync', { unique: true })
class SyncHandler implements CogmanTaskHandler {
  async handle() {
    await gate.promise;
  }
}

describe('Unique tasks', () => {
  let redis: Redis;
  let client: CogmanClient;
  const harness = testHarness();
  const namespace = harness.namespace('unique');
  const producers: ProducerProcess[] = [];

  beforeAll(async () => {
    redis = openRedis();
    const app = await harness.app({ namespace }, [HoldHandler, FlakyHandler, SyncHandler]);
    client = app.get(CogmanClient);
  });

  beforeEach(() => {
    gate = deferred();
  });

  afterEach(async () => {
    gate.resolve();
    await Promise.all(producers.splice(0).map((p) => stopProducerProcess(p, 'SIGKILL')));
  });

  afterAll(async () => {
    await harness.afterEach();
    redis.disconnect();
    await harness.afterAll();
  });

  const statusOf = async (taskId: string) => (await client.getTask(taskId))?.status;

  it('returns the unfinished task holding the key, marked deduplicated, instead of a new one', async () => {
    const first = await client.sendTask({ name: 'hold', primaryKey: 'acct-1', unique: {} });
    expect(first).toMatchObject({ deduplicated: false, status: 'queued' });
    await waitFor('it to run', () => runs.includes(first.taskId));
    // Default key: name and primaryKey; the payload does not matter.
    const second = await client.sendTask({
      name: 'hold',
      primaryKey: 'acct-1',
      payload: { other: true },
      unique: {},
    });
    expect(second).toMatchObject({ taskId: first.taskId, deduplicated: true });
    expect(['queued', 'in_progress']).toContain(second.status);
    expect(await redis.get(`cogman:{${namespace}}:unique:hold:acct-1`)).toBe(first.taskId);
    // Another primary key is another task.
    const other = await client.sendTask({ name: 'hold', primaryKey: 'acct-2', unique: true });
    expect(other).toMatchObject({ deduplicated: false });
    expect(other.taskId).not.toBe(first.taskId);

    gate.resolve();
    await waitFor('it to succeed', async () => (await statusOf(first.taskId)) === 'success');
    // Over: the key is free again.
    const third = await client.sendTask({ name: 'hold', primaryKey: 'acct-1', unique: {} });
    expect(third).toMatchObject({ deduplicated: false });
    expect(third.taskId).not.toBe(first.taskId);
  });

  it('keys on a hash of the payload without key or primaryKey, and on the key when given', async () => {
    const [a, b, c] = await client.sendTasks([
      { name: 'hold', payload: { n: 1 }, unique: true, delay: 60_000 },
      { name: 'hold', payload: { n: 1 }, unique: true, delay: 60_000 },
      { name: 'hold', payload: { n: 2 }, unique: true, delay: 60_000 },
    ]);
    expect(a.deduplicated === true ? b.deduplicated : a.deduplicated).toBe(false);
    expect(b.taskId).toBe(a.taskId);
    expect([a.deduplicated, b.deduplicated].sort()).toEqual([false, true]);
    expect(c).toMatchObject({ deduplicated: false, status: 'scheduled' });
    const keyed = await client.sendTask({
      name: 'hold',
      payload: 3,
      unique: { key: 'k-1' },
      delay: 60_000,
    });
    const again = await client.sendTask({ name: 'flaky', payload: 4, unique: { key: 'k-1' } });
    expect(again).toMatchObject({ taskId: keyed.taskId, deduplicated: true, status: 'scheduled' });
    // A cancelled task frees its key.
    await client.cancelTask(keyed.taskId);
    const fresh = await client.sendTask({
      name: 'hold',
      payload: 3,
      unique: { key: 'k-1' },
      delay: 60_000,
    });
    expect(fresh).toMatchObject({ deduplicated: false });
    for (const task of [a, c, fresh]) await client.cancelTask(task.taskId);
  });

  it('holds the key through retries, and frees it once the task has failed', async () => {
    const first = await client.sendTask({
      name: 'flaky',
      unique: { key: 'flaky-1' },
      retry: 1,
      backoff: { type: 'fixed', delay: 1500 },
    });
    await waitFor(
      'the first attempt to fail',
      async () => (await statusOf(first.taskId)) === 'retry',
    );
    const during = await client.sendTask({ name: 'flaky', unique: { key: 'flaky-1' } });
    expect(during).toMatchObject({ originalTaskId: first.taskId, attempt: 2, deduplicated: true });
    const attempts = async () => (await client.getAttempts(first.taskId)).map((a) => a.status);
    await waitFor('the task to fail', async () => (await attempts()).join() === 'retry,failed');
    const after = await client.sendTask({ name: 'flaky', unique: { key: 'flaky-1' } });
    expect(after).toMatchObject({ deduplicated: false, attempt: 1 });
    expect(after.taskId).not.toBe(first.taskId);
  });

  it('with a ttl, holds the key that long, finished or not', async () => {
    const first = await client.sendTask({ name: 'flaky', unique: { key: 'throttle', ttl: 1500 } });
    await waitFor('it to fail', async () => (await statusOf(first.taskId)) === 'failed');
    const within = await client.sendTask({ name: 'flaky', unique: { key: 'throttle', ttl: 1500 } });
    expect(within).toMatchObject({ taskId: first.taskId, deduplicated: true, status: 'failed' });
    const later = await waitFor('the key to lapse', async () => {
      const record = await client.sendTask({
        name: 'flaky',
        unique: { key: 'throttle', ttl: 1500 },
      });
      return record.deduplicated === false && record;
    });
    expect(later.taskId).not.toBe(first.taskId);
  });

  it("applies the handler's unique default, which a task can turn off", async () => {
    const first = await client.sendTask({ name: 'sync', primaryKey: 'acct-9' });
    const second = await client.sendTask({ name: 'sync', primaryKey: 'acct-9' });
    expect(first.deduplicated).toBe(false);
    expect(second).toMatchObject({ taskId: first.taskId, deduplicated: true });
    const forced = await client.sendTask({ name: 'sync', primaryKey: 'acct-9', unique: false });
    expect(forced.taskId).not.toBe(first.taskId);
    expect(forced.deduplicated).toBeUndefined();
  });

  it('refuses a bad unique setting', async () => {
    await expect(client.sendTask({ name: 'hold', unique: { ttl: -1 } })).rejects.toMatchObject({
      constructor: TaskInvalidError,
      field: 'unique.ttl',
    });
    await expect(
      client.sendTasks([{ name: 'hold' }, { name: 'hold', unique: { key: '' } }]),
    ).rejects.toMatchObject({ field: 'tasks[1].unique.key' });
  });

  it('creates one task for concurrent sends of one key from two processes', async () => {
    const ns = harness.namespace('unique-procs');
    const env = { COGMAN_NAMESPACE: ns, COGMAN_UNIQUE_SENDS: '10', COGMAN_UNIQUE_KEY: 'once' };
    producers.push(await startProducerProcess(env), await startProducerProcess(env));
    for (const producer of producers) producer.child.kill('SIGUSR2');
    await Promise.all(producers.map((producer) => producer.printed('sent')));
    const sent = (await redis.lrange(`test:${ns}:unique`, 0, -1)).map((line) => line.split(' '));
    expect(sent).toHaveLength(20);
    const ids = new Set(sent.map(([taskId]) => taskId));
    expect(ids.size).toBe(1);
    expect(sent.filter(([, deduplicated]) => deduplicated === 'false')).toHaveLength(1);
    const [taskId] = ids;
    expect(await redis.get(`cogman:{${ns}}:unique:once`)).toBe(taskId);
  });

  it('is available over REST', async () => {
    const ns = harness.namespace('unique-rest');
    const { app, api } = await startHttpApp({ namespace: ns, startWorker: false });
    try {
      const body = { name: 'hold', payload: { n: 1 }, unique: { key: 'rest-1' } };
      const first = await call(`${api}/tasks`, { method: 'POST', body });
      expect(first.status).toBe(201);
      expect(first.body).toMatchObject({ deduplicated: false, status: 'queued' });
      const second = await call(`${api}/tasks`, { method: 'POST', body });
      expect(second.body).toMatchObject({ taskId: first.body.taskId, deduplicated: true });
      const bad = await call(`${api}/tasks`, { method: 'POST', body: { name: 'hold', unique: 5 } });
      expect(bad.status).toBe(400);
    } finally {
      await app.close();
    }
  });
});
