import type { INestApplicationContext } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { CogmanClient } from '@cogman/nestjs';
import { startApp } from './support/app';
import { cleanUp, openRedis, uniqueNamespace } from './support/services';
import { waitFor } from './support/wait';
import {
  startWorkerProcess,
  stopWorkerProcess,
  type WorkerProcess,
} from './support/worker-process';

describe('Worker processes', () => {
  let redis: Redis;
  const workers: WorkerProcess[] = [];
  const apps: INestApplicationContext[] = [];
  const namespaces: string[] = [];

  beforeAll(() => {
    redis = openRedis();
  });

  afterEach(async () => {
    await Promise.all(workers.splice(0).map((worker) => stopWorkerProcess(worker, 'SIGKILL')));
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });

  afterAll(async () => {
    redis.disconnect();
    for (const namespace of namespaces) await cleanUp(namespace);
  });

  async function producer(label: string) {
    const namespace = uniqueNamespace(label);
    namespaces.push(namespace);
    const app = await startApp({ namespace, startWorker: false });
    apps.push(app);
    return { namespace, client: app.get(CogmanClient) };
  }

  async function worker(namespace: string, env: Record<string, string> = {}) {
    const started = await startWorkerProcess({ COGMAN_NAMESPACE: namespace, ...env });
    workers.push(started);
    return started;
  }

  it('redelivers the task of a worker killed with SIGKILL mid-task to another worker', async () => {
    const { namespace, client } = await producer('sigkill');
    const first = await worker(namespace, { COGMAN_LOW_CONCURRENCY: '1' });
    const task = await client.sendTask({ name: 'work', payload: { firstRunMs: 600_000 } });
    await waitFor('the first worker to start the task', async () =>
      (await redis.lrange(`test:${namespace}:started`, 0, -1)).includes(
        `${task.taskId} ${first.pid}`,
      ),
    );
    expect((await client.getTask(task.taskId))?.status).toBe('in_progress');

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
    const runs = await redis.mget(sent.map((task) => `test:${namespace}:runs:${task.taskId}`));
    expect(runs.filter((count) => count !== '1')).toEqual([]);
    const byA = Number(await redis.get(`test:${namespace}:by:${a.pid}`));
    const byB = Number(await redis.get(`test:${namespace}:by:${b.pid}`));
    expect(byA + byB).toBe(total);
    expect(byA).toBeGreaterThan(0);
    expect(byB).toBeGreaterThan(0);
  });
});
