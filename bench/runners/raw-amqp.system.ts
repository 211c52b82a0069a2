import { connect, type ChannelModel, type ConfirmChannel } from 'amqplib';
import type { RunConfig } from '../support/config';
import { COGMAN_DEFAULTS } from '../../libs/cogman/src/config/cogman-options.defaults';
import { AMQP_URI } from '../support/services';
import { type CompletionTracker, payloadMaker, type BenchPayload, type BenchSystem } from './load';

/**
 * The ceiling: amqplib alone. Persistent messages on a confirm channel (the caller's window
 * bounds the outstanding confirms), a consumer on its own connection with manual acks and the
 * same prefetch as Cogman's worker channel, acking each message as soon as it has decoded it
 * (or `--raw-ack-delay` ms later, like a worker with work to do before its ack). The queue is
 * declared like Cogman's queue of the same priority (durable; lazy for low priority), so the
 * broker does the same work.
 */
export function rawAmqpSystem(config: RunConfig, tracker: CompletionTracker): BenchSystem {
  const queue = config.name;
  const ackDelay = config.rawAckDelayMs ?? 0;
  const payload = payloadMaker(config.payloadBytes);
  let publisher: ChannelModel | undefined;
  let consumer: ChannelModel | undefined;
  let channel: ConfirmChannel | undefined;

  const publish = (index: number) =>
    new Promise<void>((resolve, reject) => {
      const content = Buffer.from(JSON.stringify(payload(index)));
      channel!.publish(
        '',
        queue,
        content,
        { persistent: true, contentType: 'application/json', messageId: String(index) },
        (error: unknown) =>
          error ? reject(error instanceof Error ? error : new Error('not confirmed')) : resolve(),
      );
    });

  return {
    async start() {
      [publisher, consumer] = await Promise.all([connect(AMQP_URI), connect(AMQP_URI)]);
      channel = await publisher.createConfirmChannel();
      await channel.assertQueue(queue, {
        durable: true,
        arguments: { 'x-queue-mode': config.priority === 'low' ? 'lazy' : 'default' },
      });
      const consuming = await consumer.createChannel();
      await consuming.prefetch(rawPrefetch(config), true);
      await consuming.consume(
        queue,
        (msg) => {
          if (!msg) return;
          const { i } = JSON.parse(msg.content.toString('utf8')) as BenchPayload;
          const done = () => {
            consuming.ack(msg);
            tracker.complete(i);
          };
          if (ackDelay > 0) setTimeout(done, ackDelay);
          else done();
        },
        { noAck: false },
      );
    },
    send: publish,
    async sendBulk(indexes) {
      await Promise.all(indexes.map(publish));
    },
    async drained() {
      await tracker.done;
      return tracker.lastAt;
    },
    async stop() {
      await consumer?.close();
      await publisher?.close();
    },
    notes: () => ({}),
  };
}

/**
 * The consumer's prefetch: that of Cogman's worker channel (its concurrency times its
 * prefetchMultiplier), so that both have as many messages in flight from the broker.
 */
export function rawPrefetch(config: RunConfig): number {
  return config.concurrency * (config.prefetchMultiplier ?? COGMAN_DEFAULTS.prefetchMultiplier);
}
