import type { CreateChannelOpts } from 'amqp-connection-manager';
import { buildTask } from '../client/cogman.client';
import { resolveCogmanOptions } from '../config';
import { TaskPublishError } from '../errors';
import type { BrokerConnection } from './broker-connection';
import { TaskPublisher } from './task.publisher';
import { TaskTopology } from './task-topology';

/** A broker connection whose channel runs its setup once, like a fresh connection does. */
function fakeConnection(confirm: (queue: string) => Promise<boolean>) {
  const declared: string[] = [];
  const published: string[] = [];
  const connection = {
    connected: true,
    onDisconnect: () => {},
    createChannel: (options: CreateChannelOpts) => ({
      on: () => {},
      waitForConnect: async () => {
        const channel = {
          assertQueue: (queue: string) => (declared.push(queue), Promise.resolve()),
        };
        await (options.setup as (channel: unknown) => Promise<void>)(channel);
      },
      publish: (_exchange: string, queue: string) => {
        published.push(queue);
        return confirm(queue);
      },
    }),
  } as unknown as BrokerConnection;
  return { connection, declared, published };
}

describe('TaskPublisher', () => {
  const options = resolveCogmanOptions({
    amqpUri: 'amqp://localhost',
    redisUri: 'redis://localhost',
    highPriorityQueueCount: 2,
    lowPriorityQueueCount: 3,
    namespace: 'ns',
  });
  const topology = new TaskTopology(options);

  it('declares the topology once per connection, not per task, and spreads tasks round robin', async () => {
    const { connection, declared, published } = fakeConnection(() => Promise.resolve(true));
    const publisher = new TaskPublisher(connection, topology, options);
    await publisher.open();
    for (let i = 0; i < 6; i++)
      await publisher.publish(buildTask({ name: 'x', priority: 'low' }).task);
    for (let i = 0; i < 4; i++)
      await publisher.publish(buildTask({ name: 'x', priority: 'high' }).task);

    expect(declared).toEqual([
      'ns.high_priority_queue_0',
      'ns.high_priority_queue_1',
      'ns.low_priority_queue_0',
      'ns.low_priority_queue_1',
      'ns.low_priority_queue_2',
      'ns.cogman_dead_letter_queue',
    ]);
    expect(published).toEqual([
      ...['0', '1', '2', '0', '1', '2'].map((i) => `ns.low_priority_queue_${i}`),
      ...['0', '1', '0', '1'].map((i) => `ns.high_priority_queue_${i}`),
    ]);
  });

  it('waits for open before publishing, and fails waiting publishes if the start failed', async () => {
    const { connection, published } = fakeConnection(() => Promise.resolve(true));
    const publisher = new TaskPublisher(connection, topology, options);
    const early = publisher.publish(buildTask({ name: 'early' }).task);
    await publisher.open();
    await early;
    expect(published).toHaveLength(1);

    const failing = new TaskPublisher(connection, topology, options);
    const waiting = failing.publish(buildTask({ name: 'never' }).task);
    failing.fail(new Error('no broker'));
    await expect(waiting).rejects.toThrow('no broker');
  });

  it('turns a missing confirm into a TaskPublishError naming the task and requestTimeout', async () => {
    const { connection } = fakeConnection(() => Promise.reject(new Error('timeout')));
    const publisher = new TaskPublisher(connection, topology, options);
    await publisher.open();
    const task = buildTask({ name: 'x' }).task;
    const publishing = publisher.publish(task);
    await expect(publishing).rejects.toThrow(TaskPublishError);
    await expect(publishing).rejects.toThrow(
      `Task ${task.taskId} was not published: no confirm from the broker within 5000 ms (requestTimeout)`,
    );
  });
});
