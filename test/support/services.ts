import { connect, type ChannelModel } from 'amqplib';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

/** The services the end-to-end specs run against (the machine's own, on loopback). */
export const AMQP_URI = process.env.COGMAN_TEST_AMQP_URI ?? 'amqp://guest:guest@127.0.0.1:5672';
export const REDIS_URI = process.env.COGMAN_TEST_REDIS_URI ?? 'redis://127.0.0.1:6379/0';
export const MONGO_URI = process.env.COGMAN_TEST_MONGO_URI ?? 'mongodb://127.0.0.1:27017';

/** A namespace no other spec uses, so queues and keys never meet. */
export function uniqueNamespace(label: string): string {
  return `t-${label}-${randomBytes(4).toString('hex')}`;
}

/** Names Cogman gives the queues of a namespace (as TaskTopology does). */
export function queueNames(namespace: string, high = 1, low = 1) {
  const prefix = namespace ? `${namespace}.` : '';
  return {
    high: Array.from({ length: high }, (_, i) => `${prefix}high_priority_queue_${i}`),
    low: Array.from({ length: low }, (_, i) => `${prefix}low_priority_queue_${i}`),
    deadLetter: `${prefix}cogman_dead_letter_queue`,
  };
}

/** A plain amqplib connection for inspecting queues and publishing raw messages. */
export async function openAmqp(): Promise<ChannelModel> {
  return connect(AMQP_URI);
}

export function openRedis(): Redis {
  return new Redis(REDIS_URI);
}

/** Deletes what a spec left behind: its queues and its Redis keys (and those of Cogman 0.1). */
export async function cleanUp(namespace: string, high = 1, low = 1): Promise<void> {
  const amqp = await openAmqp();
  try {
    const channel = await amqp.createChannel();
    const names = queueNames(namespace, high, low);
    for (const queue of [...names.high, ...names.low, names.deadLetter]) {
      await channel.deleteQueue(queue);
    }
    await channel.close();
  } finally {
    await amqp.close();
  }
  const redis = openRedis();
  try {
    for (const pattern of [
      `cogman:{${namespace}}:*`,
      `cogman:${namespace}:*`,
      `test:${namespace}:*`,
    ]) {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        if (keys.length > 0) await redis.unlink(...keys);
        cursor = next;
      } while (cursor !== '0');
    }
  } finally {
    redis.disconnect();
  }
}
