import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { ChannelModel } from 'amqplib';
import type { Redis } from 'ioredis';
import {
  CogmanClient,
  DEAD_LETTER_HEADERS,
  TaskHandler,
  type CogmanTaskHandler,
  type TaskContext,
} from '@cogman/nestjs';
import { testHarness } from './support/harness';
import { openAmqp, openRedis, queueNames } from './support/services';
import { deferred, waitFor, within } from './support/wait';
import { startWorkersUntilDeadLettered } from './support/poison';

const run = promisify(execFile);

/** The type of each of the namespace's queues, as the broker says. */
async function queueTypes(namespace: string): Promise<Record<string, string>> {
  const { stdout } = await run('rabbitmqctl', [
    'list_queues',
    'name',
    'type',
    '--formatter',
    'json',
  ]);
  const queues = JSON.parse(stdout) as { name: string; type: string }[];
  return Object.fromEntries(
    queues.filter((q) => q.name.startsWith(`${namespace}.`)).map((q) => [q.name, q.type]),
  );
}

const ran: string[] = [];
let gate = deferred();

@TaskHandler('note')
class Note implements CogmanTaskHandler {
  handle(_payload: unknown, ctx: TaskContext) {
    ran.push(ctx.task.taskId);
  }
}

@TaskHandler('gated')
class Gated implements CogmanTaskHandler {
  async handle(_payload: unknown, ctx: TaskContext) {
    ran.push(ctx.task.taskId);
    await gate.promise;
  }
}

/**
 * Quorum queues on the local broker (one node: RabbitMQ 3.10 has them; the replicated case is
 * in chaos-cluster), and queues that exist before Cogman declares them.
 */
describe('Queue types', () => {
  let amqp: ChannelModel;
  let redis: Redis;
  const harness = testHarness();

  beforeAll(async () => {
    amqp = await openAmqp();
    redis = openRedis();
  });

  beforeEach(() => {
    ran.length = 0;
    gate = deferred();
  });

  afterEach(async () => {
    gate.resolve();
    await harness.afterEach();
  });

  afterAll(async () => {
    await amqp?.close();
    redis.disconnect();
    await harness.afterAll();
  });

  it('declares quorum queues with queueType quorum, and runs tasks on them', async () => {
    const namespace = harness.namespace('quorum');
    const client = (await harness.app({ namespace, queueType: 'quorum' }, [Note])).get(
      CogmanClient,
    );
    const names = queueNames(namespace);
    expect(await queueTypes(namespace)).toEqual({
      [names.high[0]]: 'quorum',
      [names.low[0]]: 'quorum',
      [names.deadLetter]: 'quorum',
    });
    const tasks = await client.sendTasks([{ name: 'note', priority: 'high' }, { name: 'note' }]);
    await waitFor('both to succeed', async () =>
      (await Promise.all(tasks.map((t) => client.getTask(t.taskId)))).every(
        (r) => r?.status === 'success',
      ),
    );
  });

  it("uses an operator's quorum queue as it is, although Cogman would declare classic ones", async () => {
    const namespace = harness.namespace('existing');
    const names = queueNames(namespace);
    const channel = await amqp.createChannel();
    // Re-declaring a quorum queue without its arguments fails (406): Cogman must not.
    await channel.assertQueue(names.low[0], {
      durable: true,
      arguments: { 'x-queue-type': 'quorum' },
    });
    await channel.close();
    const client = (await harness.app({ namespace }, [Note])).get(CogmanClient);
    const task = await client.sendTask({ name: 'note' });
    await waitFor(
      'it to succeed',
      async () => (await client.getTask(task.taskId))?.status === 'success',
    );
    expect(await queueTypes(namespace)).toEqual({
      [names.high[0]]: 'classic',
      [names.low[0]]: 'quorum',
      [names.deadLetter]: 'classic',
    });
  });

  it('hands read-ahead deliveries of a quorum queue back at shutdown without bringing them nearer the delivery limit', async () => {
    const namespace = harness.namespace('quorum-handback');
    const options = {
      namespace,
      queueType: 'quorum' as const,
      deliveryLimit: 1,
      lowPriorityConcurrency: 1,
      prefetchMultiplier: 4,
    };
    const producer = (
      await harness.app({ namespace, queueType: 'quorum', startWorker: false })
    ).get(CogmanClient);
    const tasks = await producer.sendTasks(Array.from({ length: 5 }, () => ({ name: 'gated' })));
    for (let round = 0; round < 2; round++) {
      const worker = await harness.app(options, [Gated]);
      await waitFor('a task to start', () => ran.length > round);
      const closing = worker.close();
      // The three read ahead go back while the running one waits at the gate.
      await waitFor('the read-ahead deliveries to be back', async () => {
        const channel = await amqp.createChannel();
        const { messageCount } = await channel.checkQueue(queueNames(namespace).low[0]);
        await channel.close();
        return messageCount === tasks.length - ran.length;
      });
      gate.resolve();
      await within('the worker to stop', closing);
      gate = deferred();
    }
    gate.resolve();
    await harness.app(options, [Gated]);
    await waitFor('every task to succeed', async () =>
      (await Promise.all(tasks.map((t) => producer.getTask(t.taskId)))).every(
        (r) => r?.status === 'success',
      ),
    );
    const channel = await amqp.createChannel();
    expect((await channel.checkQueue(queueNames(namespace).deadLetter)).messageCount).toBe(0);
    await channel.close();
  });

  it('dead-letters a poison message of a quorum queue after deliveryLimit started deliveries, counted by its record', async () => {
    const namespace = harness.namespace('quorum-poison');
    const limit = 2;
    const client = (await harness.app({ namespace, queueType: 'quorum', startWorker: false })).get(
      CogmanClient,
    );
    const poison = await client.sendTask({ name: 'poison' });
    const env = {
      COGMAN_QUEUE_TYPE: 'quorum',
      COGMAN_DELIVERY_LIMIT: String(limit),
      COGMAN_LOW_CONCURRENCY: '1',
    };
    const killed = await startWorkersUntilDeadLettered(
      client,
      poison.taskId,
      () => harness.worker(namespace, env),
      { most: limit + 2 },
    );
    expect(killed).toBe(limit);
    const channel = await amqp.createChannel();
    const dead = await waitFor('the dead letter in its queue', () =>
      channel.get(queueNames(namespace).deadLetter),
    );
    expect(dead.properties.messageId).toBe(poison.taskId);
    expect(dead.properties.headers?.[DEAD_LETTER_HEADERS.reason]).toBe('delivery_limit');
    await channel.close();
    // Cogman counted the redeliveries that started (the broker's own limit is far behind).
    expect(await redis.hget(`cogman:{${namespace}}:task:${poison.taskId}`, 'redeliveries')).toBe(
      String(limit),
    );
  });
});
