import type { CreateChannelOpts } from 'amqp-connection-manager';
import type { Channel } from 'amqplib';
import type { BrokerConnection } from '../broker/broker-connection';
import type { TaskBroker } from '../broker/task-broker';
import { TaskTopology, type QueueDeclaration } from '../broker/task-topology';
import { resolveCogmanOptions } from '../config';
import type { TaskExecutor } from './task.executor';
import { TaskConsumer } from './task.consumer';

/** A connection whose channels record what the consumer asks of them. */
function fakeConnection(serverVersion: string) {
  const calls: string[] = [];
  const declared: QueueDeclaration[][] = [];
  const connection = {
    ensureQueues: (declare: (version: string) => QueueDeclaration[]) => {
      declared.push(declare(serverVersion));
      return Promise.resolve();
    },
    createChannel: (options: CreateChannelOpts) => {
      const channel = {
        prefetch: (count: number, global: boolean) => {
          calls.push(`prefetch ${count} global=${global}`);
          return Promise.resolve();
        },
        consume: (queue: string) => {
          calls.push(`consume ${queue}`);
          return Promise.resolve({ consumerTag: `tag-${queue}` });
        },
        once: () => channel,
      } as unknown as Channel;
      const setup = (options.setup as (ch: Channel) => Promise<void>)(channel);
      return { waitForConnect: () => setup };
    },
  } as unknown as BrokerConnection;
  return { connection, calls, declared };
}

describe('TaskConsumer', () => {
  it('sets a prefetch per consumer, never a global one, shared out over the queues of a priority', async () => {
    const options = resolveCogmanOptions({
      amqpUri: 'amqp://x',
      redisUri: 'redis://x',
      namespace: 'app',
      queueType: 'quorum',
      highPriorityQueueCount: 2,
      highPriorityConcurrency: 10,
      lowPriorityConcurrency: 3,
      prefetchMultiplier: 4,
    });
    const { connection, calls, declared } = fakeConnection('4.3.0');
    const consumer = new TaskConsumer(
      connection,
      new TaskTopology(options),
      {} as TaskExecutor,
      {} as TaskBroker,
      options,
    );
    await consumer.start();
    expect(calls.filter((call) => call.startsWith('prefetch')).sort()).toEqual([
      // high: 10 slots x 4, over 2 queues; low: 3 x 4, over 1.
      'prefetch 12 global=false',
      'prefetch 20 global=false',
    ]);
    expect(calls.filter((call) => call.startsWith('consume')).sort()).toEqual([
      'consume app.high_priority_queue_0',
      'consume app.high_priority_queue_1',
      'consume app.low_priority_queue_0',
    ]);
    // Each channel makes sure its queues exist (as quorum queues here) before consuming.
    expect(
      declared
        .flat()
        .map((d) => [d.name, d.arguments['x-queue-type']])
        .sort(),
    ).toEqual([
      ['app.high_priority_queue_0', 'quorum'],
      ['app.high_priority_queue_1', 'quorum'],
      ['app.low_priority_queue_0', 'quorum'],
    ]);
  });
});
