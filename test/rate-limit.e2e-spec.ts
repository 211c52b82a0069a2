import type { Redis } from 'ioredis';
import { CogmanClient } from '@cogman/nestjs';
import { testHarness } from './support/harness';
import { openRedis } from './support/services';
import { waitFor } from './support/wait';

/** The most items of `times` (sorted) within any window of `width` ms. */
function busiestWindow(times: number[], width: number): number {
  let most = 0;
  for (let i = 0, j = 0; j < times.length; j++) {
    while (times[j] - times[i] >= width) i++;
    most = Math.max(most, j - i + 1);
  }
  return most;
}

describe('Rate limits across worker processes', () => {
  const harness = testHarness();
  let redis: Redis;

  beforeAll(() => {
    redis = openRedis();
  });

  afterEach(() => harness.afterEach());

  afterAll(async () => {
    redis.disconnect();
    await harness.afterAll();
  });

  it('starts 100 tasks limited to 10 a second on two workers over 9 s or more, never 11 in a second', async () => {
    const namespace = harness.namespace('rate');
    const client = (await harness.app({ namespace, startWorker: false })).get(CogmanClient);
    await Promise.all([harness.worker(namespace), harness.worker(namespace)]);
    const tasks = await client.sendTasks(
      Array.from({ length: 100 }, (_, n) => ({ name: 'limited', payload: { n } })),
    );
    const started = await waitFor(
      'all 100 to start',
      async () => {
        const lines = await redis.lrange(`test:${namespace}:limited`, 0, -1);
        return lines.length >= 100 ? lines : null;
      },
      { timeout: 60_000, interval: 250 },
    );
    const starts = started.map((line) => line.split(' '));
    // Each ran once, as its first attempt: waiting for its turn changed no attempt count.
    expect(new Set(starts.map(([id]) => id)).size).toBe(100);
    expect(starts.every(([, , attempt]) => attempt === '1')).toBe(true);
    const times = starts.map(([, ms]) => Number(ms)).sort((a, b) => a - b);
    expect(times[times.length - 1] - times[0]).toBeGreaterThanOrEqual(9000);
    // The limiter counts starts on Redis's clock; these times are taken in the handlers a moment
    // later, by a few ms more or less: a window a little under one second allows for that.
    expect(busiestWindow(times, 950)).toBeLessThanOrEqual(10);
    await waitFor('every task to succeed', async () =>
      (await Promise.all(tasks.map((task) => client.getTask(task.taskId)))).every(
        (record) => record?.status === 'success' && record.attempt === 1,
      ),
    );
  }, 90_000);
});
