import type { Redis } from 'ioredis';
import { CogmanClient, DEAD_LETTER_HEADERS } from '@cogman/nestjs';
import { testHarness } from './support/harness';
import { openAmqp, openRedis, queueNames } from './support/services';
import { startWorkersUntilDeadLettered } from './support/poison';
import { waitFor } from './support/wait';

const DELIVERY_LIMIT = 3;

describe('A poison message: it kills its worker process on every delivery', () => {
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

  it(`is dead-lettered (delivery_limit) after ${DELIVERY_LIMIT} deliveries, and the tasks behind it run`, async () => {
    const namespace = harness.namespace('poison');
    const client = (await harness.app({ namespace, startWorker: false })).get(CogmanClient);
    const poison = await client.sendTask({ name: 'poison' });
    const healthy = await client.sendTasks(
      Array.from({ length: 5 }, () => ({ name: 'work', payload: {} })),
    );
    const env = { COGMAN_DELIVERY_LIMIT: String(DELIVERY_LIMIT), COGMAN_LOW_CONCURRENCY: '1' };

    // Start a worker after each one the poison task killed, until one outlives it.
    const killed = await startWorkersUntilDeadLettered(
      client,
      poison.taskId,
      () => harness.worker(namespace, env),
      { most: DELIVERY_LIMIT + 2 },
    );

    expect(killed).toBe(DELIVERY_LIMIT);
    const started = await redis.lrange(`test:${namespace}:started`, 0, -1);
    expect(started.filter((line) => line.startsWith(poison.taskId))).toHaveLength(DELIVERY_LIMIT);
    expect(await client.getTask(poison.taskId)).toMatchObject({
      status: 'failed',
      failError: expect.stringContaining(`delivered ${DELIVERY_LIMIT + 1} times`),
    });

    const amqp = await openAmqp();
    try {
      const channel = await amqp.createChannel();
      const dead = await channel.get(queueNames(namespace).deadLetter);
      expect(dead && dead.properties.messageId).toBe(poison.taskId);
      expect(dead && dead.properties.headers?.[DEAD_LETTER_HEADERS.reason]).toBe('delivery_limit');
    } finally {
      await amqp.close();
    }
    await waitFor('the healthy tasks to succeed', async () =>
      (await Promise.all(healthy.map((task) => client.getTask(task.taskId)))).every(
        (record) => record?.status === 'success',
      ),
    );
    console.log(
      `Poison task: ${killed} worker processes killed, dead-lettered at delivery ${DELIVERY_LIMIT + 1}; ${healthy.length} healthy tasks behind it ran`,
    );
  });
});
