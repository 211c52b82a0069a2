import type { Redis } from 'ioredis';
import { setTimeout as delay } from 'node:timers/promises';
import { CogmanClient } from '@cogman/nestjs';
import {
  ChaosServices,
  CountStreamRuns,
  describeStream,
  runStream,
  streamRuns,
  type IsolatedRedis,
} from './support/chaos';
import { testHarness } from './support/harness';
import { openRedis } from './support/services';
import { waitFor } from './support/wait';
import { runCounts, stopWorkerProcess } from './support/worker-process';

describe('Chaos: processes and Redis fail while tasks stream in', () => {
  const harness = testHarness();
  const chaos = new ChaosServices();
  let redis: Redis;

  beforeAll(() => {
    redis = openRedis();
  });

  afterEach(() => harness.afterEach());

  afterAll(async () => {
    redis.disconnect();
    await harness.afterAll();
    await chaos.stopAll();
  });

  it('loses nothing when a worker process is killed with SIGKILL mid-stream', async () => {
    const ns = harness.namespace('chaos-worker-kill');
    const client = (await harness.app({ namespace: ns, startWorker: false })).get(CogmanClient);
    const doomed = await harness.worker(ns);
    const survivor = await harness.worker(ns);
    const report = await runStream({
      client,
      task: 'work',
      total: 2000,
      rate: 250,
      inFlight: 50,
      // Each task holds its worker for 20 ms, so the killed one dies with tasks in hand.
      runs: (ids) => runCounts(redis, ns, ids),
      faults: [
        {
          after: 800,
          name: 'worker killed',
          run: async () => {
            await waitFor(
              'the doomed worker to have run tasks',
              async () => Number(await redis.get(`test:${ns}:by:${doomed.pid}`)) > 0,
            );
            await stopWorkerProcess(doomed, 'SIGKILL');
          },
        },
      ],
    });
    console.log(
      describeStream('A worker process killed with SIGKILL (another keeps going):', report),
    );
    expect(report.lost).toBe(0);
    expect(Number(await redis.get(`test:${ns}:by:${survivor.pid}`))).toBeGreaterThan(0);
  });

  it('loses nothing and records every final status when Redis restarts mid-stream', async () => {
    const isolated: IsolatedRedis = await chaos.redis({ persistence: 'aof' });
    const ns = harness.namespace('chaos-redis');
    const client = (
      await harness.app({ namespace: ns, redisUri: isolated.uri }, [CountStreamRuns])
    ).get(CogmanClient);
    const report = await runStream({
      client,
      task: 'chaos',
      total: 2000,
      rate: 250,
      inFlight: 50,
      runs: () => streamRuns,
      faults: [
        {
          after: 500,
          name: 'Redis down for 2 s',
          run: async () => {
            await isolated.kill();
            await delay(2000);
            await isolated.start();
          },
        },
      ],
    });
    console.log(describeStream('Redis killed, down for 2 s, started again (AOF):', report));
    expect(report.rejected).toBe(0);
    expect(report.lost).toBe(0);

    // The status writes that waited for Redis landed: every task ends `success`.
    const ids = [...streamRuns.keys()];
    const records = await waitFor(
      'every record to say success',
      async () => {
        const all = await Promise.all(ids.map((id) => client.getTask(id)));
        return all.every((record) => record?.status === 'success') ? all : null;
      },
      { timeout: 30_000, interval: 250 },
    );
    expect(records).toHaveLength(report.accepted);
  });
});
