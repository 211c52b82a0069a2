import type { CreateChannelOpts } from 'amqp-connection-manager';
import { buildTask } from '../task';
import { resolveCogmanOptions } from '../config';
import { BrokerUnavailableError, ClientNotStartedError, TaskPublishError } from '../errors';
import type { BrokerConnection } from './broker-connection';
import { TaskPublisher } from './task.publisher';
import { TaskTopology } from './task-topology';

/**
 * A broker connection whose channel runs its setup once, like a fresh connection does; the
 * amqplib channel it sets up confirms each message as `confirm` says (undefined: never).
 */
function fakeConnection(confirm: (queue: string) => Error | null | undefined) {
  const declared: string[] = [];
  const published: string[] = [];
  const channel = {
    once: () => {},
    publish: (
      _exchange: string,
      queue: string,
      _content: Buffer,
      _options: unknown,
      callback: (error: Error | null) => void,
    ) => {
      published.push(queue);
      const outcome = confirm(queue);
      if (outcome !== undefined) setImmediate(() => callback(outcome));
      return true;
    },
  };
  const connection = {
    connected: true,
    ensureQueues: (declare: (version: string) => { name: string }[]) => {
      declared.push(...declare('4.3.0').map((queue) => queue.name));
      return Promise.resolve();
    },
    createChannel: (options: CreateChannelOpts) => ({
      on: () => {},
      waitForConnect: () => (options.setup as (channel: unknown) => Promise<void>)(channel),
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

  it('refuses tasks of an application that never starts it, after requestTimeout', async () => {
    const { connection } = fakeConnection(() => null);
    const quick = { ...options, requestTimeout: 30 };
    const publisher = new TaskPublisher(connection, new TaskTopology(quick), quick);
    expect(publisher.started).toBe(false);
    const error = await publisher.untilStarted().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClientNotStartedError);
    expect((error as Error).message).toContain('app.init()');
  });

  it('holds tasks sent while the application starts it until it has started, or failed', async () => {
    const { connection } = fakeConnection(() => null);
    const quick = { ...options, requestTimeout: 30 };
    const publisher = new TaskPublisher(connection, new TaskTopology(quick), quick);
    const waiting = publisher.untilStarted();
    publisher.starting();
    // Connecting takes longer than requestTimeout; the task waits for it.
    await new Promise((resolve) => setTimeout(resolve, 60));
    await publisher.open();
    await expect(waiting).resolves.toBeUndefined();
    expect(publisher.started).toBe(true);

    const failing = new TaskPublisher(connection, new TaskTopology(quick), quick);
    const refused = failing.untilStarted();
    failing.fail(new BrokerUnavailableError('amqp://x', 'no connection'));
    await expect(refused).rejects.toBeInstanceOf(BrokerUnavailableError);
  });

  it('declares the topology once per connection, not per task, and spreads tasks round robin', async () => {
    const { connection, declared, published } = fakeConnection(() => null);
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
    const { connection, published } = fakeConnection(() => null);
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
    const { connection } = fakeConnection(() => undefined);
    const publisher = new TaskPublisher(connection, topology, { ...options, requestTimeout: 50 });
    await publisher.open();
    const task = buildTask({ name: 'x' }).task;
    const publishing = publisher.publish(task);
    await expect(publishing).rejects.toThrow(TaskPublishError);
    await expect(publishing).rejects.toThrow(
      `Task ${task.taskId} was not published: no confirm from the broker within 50 ms (requestTimeout)`,
    );
  });

  it('turns a negative confirm into a TaskPublishError', async () => {
    const { connection } = fakeConnection(() => new Error('message nacked'));
    const publisher = new TaskPublisher(connection, topology, options);
    await publisher.open();
    const task = buildTask({ name: 'x' }).task;
    await expect(publisher.publish(task)).rejects.toThrow(
      `Task ${task.taskId} was not published: message nacked`,
    );
  });
});
