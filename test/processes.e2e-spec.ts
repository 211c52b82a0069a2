import type { Redis } from 'ioredis';
import { CogmanClient } from '@cogman/nestjs';
import { testHarness } from './support/harness';
import { openRedis } from './support/services';
import { waitFor } from './support/wait';
import { runsKey, stopWorkerProcess } from './support/worker-process';

describe('Worker processes', () => {
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

  async function producer(label: string) {
    const namespace = harness.namespace(label);
    const app = await harness.app({ namespace, startWorker: false });
    return { namespace, client: app.get(CogmanClient) };
  }

  const worker = (namespace: string, env: Record<string, string> = {}) =>
    harness.worker(namespace, env);

  it('redelivers the task of a worker killed with SIGKILL mid-task to another worker', async () => {
    const { namespace, client } = await producer('sigkill');
    const first = await worker(namespace, { COGMAN_LOW_CONCURRENCY: '1' });
    const task = await client.sendTask({ name: 'work', payload: { firstRunMs: 600_000 } });
    await waitFor('the first worker to start the task', async () =>
      (await redis.lrange(`test:${namespace}:started`, 0, -1)).includes(
        `${task.taskId} ${first.pid}`,
      ),
    );
    // Recorded in_progress once it has run progressAfter (1 s by default).
    const running = await waitFor('its in_progress record', async () => {
      const record = await client.getTask(task.taskId);
      return record?.status === 'in_progress' ? record : null;
    });
    expect(running.startedAt).toEqual(expect.any(Date));

    await stopWorkerProcess(first, 'SIGKILL');
    const second = await worker(namespace);
    await waitFor(
      'the task to succeed on the second worker',
      async () => (await client.getTask(task.taskId))?.status === 'success',
    );

    expect(await redis.lrange(`test:${namespace}:started`, 0, -1)).toEqual([
      `${task.taskId} ${first.pid}`,
      `${task.taskId} ${second.pid}`,
    ]);
    expect(await redis.get(`test:${namespace}:by:${second.pid}`)).toBe('1');
    expect(await redis.get(`test:${namespace}:by:${first.pid}`)).toBeNull();
  });

  it('shares the queues between two worker processes without running a task twice', async () => {
    const { namespace, client } = await producer('shared');
    const a = await worker(namespace);
    const b = await worker(namespace);
    const total = 2000;
    const sent = await Promise.all(
      Array.from({ length: total }, (_, n) =>
        client.sendTask({ name: 'work', payload: { n }, priority: n % 3 ? 'low' : 'high' }),
      ),
    );
    await waitFor(
      'every task to succeed',
      async () => {
        const records = await Promise.all(sent.map((task) => client.getTask(task.taskId)));
        return records.every((record) => record?.status === 'success');
      },
      { timeout: 90_000, interval: 250 },
    );
    const runs = await redis.mget(sent.map((task) => runsKey(namespace, task.taskId)));
    expect(runs.filter((count) => count !== '1')).toEqual([]);
    const byA = Number(await redis.get(`test:${namespace}:by:${a.pid}`));
    const byB = Number(await redis.get(`test:${namespace}:by:${b.pid}`));
    expect(byA + byB).toBe(total);
    expect(byA).toBeGreaterThan(0);
    expect(byB).toBeGreaterThan(0);
  });
});
