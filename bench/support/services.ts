import { connect } from 'amqplib';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

/** The services the benchmarks run against (the machine's own, on loopback). */
export const AMQP_URI = process.env.COGMAN_BENCH_AMQP_URI ?? 'amqp://guest:guest@127.0.0.1:5672';
export const REDIS_URI = process.env.COGMAN_BENCH_REDIS_URI ?? 'redis://127.0.0.1:6379/0';
export const MONGO_URI = process.env.COGMAN_BENCH_MONGO_URI ?? 'mongodb://127.0.0.1:27017';

/** A name no other run uses: queues, key prefixes and databases of one run never meet another's. */
export function uniqueName(label: string): string {
  return `bench-${label}-${randomBytes(4).toString('hex')}`;
}

/** What one run created, so that it can be deleted afterwards. */
export interface RunResources {
  queues: string[];
  /** Redis key patterns (SCAN MATCH syntax). */
  redisPatterns: string[];
  /** MongoDB database to drop. */
  mongoDatabase?: string;
}

/** Deletes a run's queues, Redis keys and database. Missing ones are not an error. */
export async function deleteResources(resources: RunResources): Promise<void> {
  if (resources.queues.length > 0) {
    const amqp = await connect(AMQP_URI);
    try {
      const channel = await amqp.createChannel();
      for (const queue of resources.queues) await channel.deleteQueue(queue);
      await channel.close();
    } finally {
      await amqp.close();
    }
  }
  if (resources.redisPatterns.length > 0) {
    const redis = new Redis(REDIS_URI);
    try {
      for (const pattern of resources.redisPatterns) {
        await scanKeys(redis, pattern, (keys) => redis.unlink(...keys));
      }
    } finally {
      redis.disconnect();
    }
  }
  if (resources.mongoDatabase) await dropMongoDatabase(resources.mongoDatabase);
}

/** Calls `each` with every batch of keys matching `pattern`. */
export async function scanKeys(
  redis: Redis,
  pattern: string,
  each: (keys: string[]) => unknown,
): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    if (keys.length > 0) await each(keys);
    cursor = next;
  } while (cursor !== '0');
}

async function dropMongoDatabase(name: string): Promise<void> {
  // mongoose is a dependency of the library already; its driver drops the database.
  const { createConnection } = await import('mongoose');
  const connection = createConnection(`${MONGO_URI}/${name}`, { serverSelectionTimeoutMS: 5000 });
  try {
    await connection.asPromise();
    await connection.dropDatabase();
  } finally {
    await connection.close();
  }
}

/** Number of messages ready in a queue, or null when it does not exist. */
export async function queueDepth(queue: string): Promise<number | null> {
  const amqp = await connect(AMQP_URI);
  try {
    const channel = await amqp.createChannel();
    channel.on('error', () => {});
    try {
      const { messageCount } = await channel.checkQueue(queue);
      await channel.close();
      return messageCount;
    } catch {
      return null;
    }
  } finally {
    await amqp.close().catch(() => {});
  }
}

/** Keys matching `pattern` and an estimate of their memory (MEMORY USAGE of a sample). */
export async function redisFootprint(pattern: string): Promise<{ keys: number; bytes: number }> {
  const redis = new Redis(REDIS_URI);
  try {
    let keys = 0;
    const sample: string[] = [];
    await scanKeys(redis, pattern, (batch) => {
      keys += batch.length;
      if (sample.length < 500) sample.push(...batch.slice(0, 500 - sample.length));
    });
    let sampled = 0;
    for (const key of sample) sampled += (await redis.memory('USAGE', key)) ?? 0;
    return { keys, bytes: sample.length ? (sampled / sample.length) * keys : 0 };
  } finally {
    redis.disconnect();
  }
}

/** What RabbitMQ reports about a queue (rabbitmqctl, read only); null when unavailable. */
export async function rabbitQueueStats(
  queue: string,
): Promise<{ messages: number; memoryBytes: number; messageBytes: number } | null> {
  const { execFile } = await import('node:child_process');
  return new Promise((resolve) => {
    execFile(
      'rabbitmqctl',
      ['list_queues', '-q', '--no-table-headers', 'name', 'messages', 'memory', 'message_bytes'],
      { timeout: 30_000 },
      (error, stdout) => {
        if (error) return resolve(null);
        const row = stdout
          .split('\n')
          .map((line) => line.split('\t'))
          .find((cells) => cells[0] === queue);
        resolve(
          row
            ? {
                messages: Number(row[1]),
                memoryBytes: Number(row[2]),
                messageBytes: Number(row[3]),
              }
            : null,
        );
      },
    );
  });
}
