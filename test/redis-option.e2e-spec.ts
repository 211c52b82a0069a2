import { RedisModule, RedisService } from '@liaoliaots/nestjs-redis';
import { Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { ChannelModel } from 'amqplib';
import { Redis } from 'ioredis';
import {
  CogmanClient,
  CogmanModule,
  OptionsInvalidError,
  TaskHandler,
  type CogmanTaskHandler,
  type TaskContext,
} from '@cogman/nestjs';
import { resolveCogmanOptions } from '../libs/cogman/src/config';
import { COGMAN_REDIS, type CogmanRedis } from '../libs/cogman/src/store/redis-connection';
import { legacyRedisKeys, redisKeys } from '../libs/cogman/src/store/redis-keys';
import { RedisTaskLogStore } from '../libs/cogman/src/store/redis-task-log.store';
import { TaskCancellation } from '../libs/cogman/src/worker/task-cancellation';
import { buildTask, toMessage, type TaskEnvelope } from '../libs/cogman/src/task';
import { testHarness } from './support/harness';
import { AMQP_URI, REDIS_URI, openAmqp, openRedis, queueNames } from './support/services';
import { waitFor } from './support/wait';

const ran = new Map<string, unknown>();

@TaskHandler('note')
class Note implements CogmanTaskHandler {
  handle(payload: unknown, ctx: TaskContext) {
    ran.set(ctx.task.taskId, payload);
  }
}

const { hostname, port, pathname } = new URL(REDIS_URI);
const REDIS_OPTIONS = {
  host: hostname,
  port: Number(port || 6379),
  db: Number(pathname.slice(1) || 0),
};

/**
 * The connections of an application's Cogman, by the ids Redis gave them: its copy of the client
 * and its cancellation subscriber (the spec reads it from TaskCancellation). Ids, not names:
 * other specs and processes on the shared Redis have connections named `cogman` too.
 */
async function cogmanConnections(app: INestApplicationContext): Promise<Map<number, string>> {
  const copy = app.get<CogmanRedis>(COGMAN_REDIS) as Redis;
  const cancellation: unknown = app.get(TaskCancellation);
  const { subscriber } = cancellation as { subscriber: Redis };
  const [copyId, subscriberId] = await Promise.all([
    copy.client('ID'),
    // A subscribed connection takes no CLIENT ID: its id is found by its local port.
    idByPort(copy, subscriber.stream.localPort!),
  ]);
  return new Map([
    [copyId, 'cogman'],
    [subscriberId, 'cogman-cancel'],
  ]);
}

/** The id and name of each connection of the shared Redis (CLIENT LIST). */
async function connections(redis: Redis): Promise<Map<number, { name: string; port: number }>> {
  const list = (await redis.client('LIST')) as string;
  const found = new Map<number, { name: string; port: number }>();
  for (const line of list.split('\n').filter(Boolean)) {
    const id = Number(/\bid=(\d+)/.exec(line)?.[1]);
    const name = /\bname=(\S*)/.exec(line)?.[1] ?? '';
    const port = Number(/\baddr=\S+:(\d+)/.exec(line)?.[1]);
    found.set(id, { name, port });
  }
  return found;
}

async function idByPort(redis: Redis, port: number): Promise<number> {
  for (const [id, connection] of await connections(redis)) if (connection.port === port) return id;
  throw new Error(`No connection from port ${port}`);
}

/** Whether any of these connections is still open on the shared Redis. */
async function anyOpen(redis: Redis, ids: Iterable<number>): Promise<boolean> {
  const open = await connections(redis);
  return [...ids].some((id) => open.has(id));
}

describe('The redis option: ioredis options, a client of the application, @liaoliaots/nestjs-redis', () => {
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

  async function runsATask(app: INestApplicationContext): Promise<void> {
    const client = app.get(CogmanClient);
    const task = await client.sendTask({ name: 'note', payload: { hello: 'redis' } });
    await waitFor(
      'the task to succeed',
      async () => (await client.getTask(task.taskId))?.status === 'success',
    );
    expect(ran.get(task.taskId)).toEqual({ hello: 'redis' });
  }

  it('connects with ioredis options', async () => {
    const namespace = harness.namespace('redis-options');
    const app = await harness.app({ namespace, redisUri: undefined, redis: REDIS_OPTIONS }, [Note]);
    await runsATask(app);
    expect(app.get(CogmanClient).services().redis).toEqual({
      uri: `redis://${REDIS_OPTIONS.host}:${REDIS_OPTIONS.port}${REDIS_OPTIONS.db ? `/${REDIS_OPTIONS.db}` : ''}`,
      topology: 'standalone',
      connected: true,
    });
  });

  it("copies the application's client with its own settings, closes the copy and leaves the client alone", async () => {
    const namespace = harness.namespace('redis-client');
    // The application's client: auto-pipelining, a retry limit and a command timeout, all of
    // which Cogman's copy replaces.
    const own = new Redis({
      ...REDIS_OPTIONS,
      connectionName: 'the-application',
      enableAutoPipelining: true,
      maxRetriesPerRequest: 1,
      commandTimeout: 50,
    });
    try {
      await own.ping();
      const app = await harness.app({ namespace, redisUri: undefined, redis: own }, [Note]);
      const copy = app.get<CogmanRedis>(COGMAN_REDIS) as Redis;
      expect(copy).not.toBe(own);
      expect(copy.options).toMatchObject({
        host: REDIS_OPTIONS.host,
        port: REDIS_OPTIONS.port,
        connectionName: 'cogman',
        enableAutoPipelining: false,
        maxRetriesPerRequest: null,
        socketTimeout: 5000,
      });
      expect(copy.options.commandTimeout).toBeUndefined();
      await runsATask(app);
      const ours = await cogmanConnections(app);
      const open = await connections(redis);
      expect([...ours].map(([id]) => open.get(id)?.name)).toEqual(['cogman', 'cogman-cancel']);
      expect(open.get(await own.client('ID'))?.name).toBe('the-application');

      await harness.afterEach();

      await waitFor('the copy to close', () => copy.status === 'end');
      await waitFor('the copy to leave Redis', async () => !(await anyOpen(redis, ours.keys())));
      // The application's client is as it was: open, and its own.
      expect(own.status).toBe('ready');
      expect(await own.ping()).toBe('PONG');
      expect(own.options.connectionName).toBe('the-application');
    } finally {
      own.disconnect();
    }
  });

  it('refuses a client with a keyPrefix, and options without redisUri or redis, saying why', async () => {
    const prefixed = new Redis({ ...REDIS_OPTIONS, keyPrefix: 'app:', lazyConnect: true });
    try {
      const boot = (options: object) =>
        NestFactory.createApplicationContext(
          CogmanModule.forRoot({ amqpUri: AMQP_URI, ...options }),
          { logger: false, abortOnError: false },
        );
      await expect(boot({ redis: prefixed })).rejects.toThrow(OptionsInvalidError);
      await expect(boot({ redis: prefixed })).rejects.toThrow(
        /"redis\.keyPrefix" \("app:"\): is not supported: Cogman names its keys itself, all under the hash tag of the namespace \(cogman:\{<namespace>\}:…\)/,
      );
      await expect(boot({})).rejects.toThrow(
        /"redisUri" \(undefined\): is required, or redis instead/,
      );
      await expect(boot({ redisUri: REDIS_URI, redis: REDIS_OPTIONS })).rejects.toThrow(
        /give one of them, not both/,
      );
      expect(prefixed.status).toBe('wait');
    } finally {
      prefixed.disconnect();
    }
  });

  it('runs on the client an application gets from @liaoliaots/nestjs-redis, and every client closes with the application', async () => {
    const namespace = harness.namespace('nestjs-redis');

    @Injectable()
    class Cache {
      constructor(readonly redis: RedisService) {}
    }

    // The recipe of the README: the application's RedisModule names a client for Cogman, and
    // forRootAsync hands it over.
    @Module({
      imports: [
        RedisModule.forRoot({
          config: [
            { namespace: 'cache', url: REDIS_URI, connectionName: 'app-cache' },
            { namespace: 'cogman', url: REDIS_URI, connectionName: 'app-cogman' },
          ],
        }),
        CogmanModule.forRootAsync({
          inject: [RedisService],
          useFactory: (redisService: RedisService) => ({
            amqpUri: AMQP_URI,
            redis: redisService.getOrThrow('cogman'),
            namespace,
          }),
        }),
      ],
      providers: [Note, Cache],
    })
    class AppModule {}

    const app = await NestFactory.createApplicationContext(AppModule, { logger: ['error'] });
    let clients: Redis[] = [];
    let copy: Redis | undefined;
    let ours = new Map<number, string>();
    try {
      const service = app.get(Cache).redis;
      clients = [service.getOrThrow('cache'), service.getOrThrow('cogman')];
      copy = app.get<CogmanRedis>(COGMAN_REDIS) as Redis;
      expect(clients).not.toContain(copy);
      await clients[0].set(`test:${namespace}:cached`, 'yes');
      await runsATask(app);
      expect(await clients[0].get(`test:${namespace}:cached`)).toBe('yes');
      ours = await cogmanConnections(app);
      for (const client of clients) {
        const id = await client.client('ID');
        ours.set(id, String(client.options.connectionName));
      }
      const open = await connections(redis);
      expect([...ours].map(([id]) => open.get(id)?.name)).toEqual([
        'cogman',
        'cogman-cancel',
        'app-cache',
        'app-cogman',
      ]);
    } finally {
      await app.close();
    }
    // The application's clients (closed by RedisModule) and Cogman's own (closed by Cogman).
    await waitFor('every client to close', () =>
      [...clients, copy].every((client) => client.status === 'end'),
    );
    await waitFor(
      'every connection to leave Redis',
      async () => !(await anyOpen(redis, ours.keys())),
    );
  });

  describe('keys of Cogman 0.1 (before the hash tag)', () => {
    let amqp: ChannelModel;

    beforeAll(async () => {
      amqp = await openAmqp();
    });

    afterAll(() => amqp.close());

    /**
     * Writes records as 0.1 left them: the same fields, under `cogman:<namespace>:…`. They are
     * written with today's store, then renamed to the keys of 0.1.
     */
    async function leaveAs01(
      namespace: string,
      changes: Parameters<RedisTaskLogStore['record']>[0][],
    ) {
      const store = new RedisTaskLogStore(
        redis,
        resolveCogmanOptions({
          amqpUri: AMQP_URI,
          redisUri: REDIS_URI,
          namespace,
          redisTtl: 60_000,
        }),
      );
      for (const change of changes) await store.record(change);
      const keys = redisKeys(namespace);
      const old = legacyRedisKeys(namespace);
      const ids = [...new Set(changes.map((change) => change.taskId))];
      for (const id of ids) await redis.rename(keys.task(id), old.task(id));
      for (const set of ['scheduled', 'cancelled'] as const) {
        if (await redis.exists(keys[set])) await redis.rename(keys[set], old[set]);
      }
    }

    /** Publishes a task as a Cogman producer does (the message format did not change). */
    async function publish(namespace: string, task: TaskEnvelope): Promise<void> {
      const { content, options } = toMessage(task);
      const channel = await amqp.createConfirmChannel();
      channel.sendToQueue(queueNames(namespace).low[0], content, options);
      await channel.waitForConfirms();
      await channel.close();
    }

    it('moves the schedule and the cancelled set, with their records, and reads the other records where they are until they expire', async () => {
      const namespace = harness.namespace('legacy');
      const keys = redisKeys(namespace);
      const old = legacyRedisKeys(namespace);
      const now = new Date();
      const delayed = buildTask({ name: 'note', payload: { delayed: true }, delay: 1500 }, now);
      const cancelled = buildTask({ name: 'note', payload: { cancelled: true } }, now).task;
      const finished = buildTask({ name: 'note', payload: { finished: true } }, now).task;
      const queued = buildTask({ name: 'note', payload: { queued: true } }, now).task;
      await leaveAs01(namespace, [
        {
          taskId: delayed.task.taskId,
          status: 'scheduled',
          at: now,
          task: delayed.task,
          runAt: delayed.runAt,
        },
        { taskId: cancelled.taskId, status: 'queued', at: now, task: cancelled },
        { taskId: cancelled.taskId, status: 'cancelled', at: now },
        { taskId: finished.taskId, status: 'success', at: now, task: finished, duration: 3 },
        { taskId: queued.taskId, status: 'queued', at: now, task: queued },
      ]);
      expect(await redis.zscore(old.scheduled, delayed.task.taskId)).not.toBeNull();
      expect(await redis.zscore(old.cancelled, cancelled.taskId)).not.toBeNull();
      await redis.pexpire(old.task(finished.taskId), 2000);

      const app = await harness.app({ namespace }, [Note]);
      const client = app.get(CogmanClient);
      // 0.1's producer had published these two.
      await publish(namespace, cancelled);
      await publish(namespace, queued);

      // The delayed task moved with its record, and runs when due.
      await waitFor('the delayed task to run', () => ran.has(delayed.task.taskId), {
        timeout: 15_000,
      });
      await waitFor(
        'its record to say success',
        async () => (await client.getTask(delayed.task.taskId))?.status === 'success',
      );
      expect(await client.getTask(delayed.task.taskId)).toMatchObject({
        name: 'note',
        payload: { delayed: true },
      });
      expect(await redis.exists(old.task(delayed.task.taskId), old.scheduled)).toBe(0);
      expect(await redis.exists(keys.task(delayed.task.taskId))).toBe(1);

      // The queued task ran; its outcome is under today's key, its description under 0.1's: the
      // record read is both.
      await waitFor('the queued task to run', () => ran.has(queued.taskId));
      await waitFor(
        'its record to say success',
        async () => (await client.getTask(queued.taskId))?.status === 'success',
      );
      expect(await client.getTask(queued.taskId)).toMatchObject({
        name: 'note',
        payload: { queued: true },
        status: 'success',
      });
      expect(await redis.hget(keys.task(queued.taskId), 'task')).toBeNull();

      // The cancelled task moved with its record, and its message was skipped.
      const control = await client.sendTask({ name: 'note' });
      await waitFor('the control task to run', () => ran.has(control.taskId));
      expect(ran.has(cancelled.taskId)).toBe(false);
      expect(await redis.zscore(keys.cancelled, cancelled.taskId)).not.toBeNull();
      expect(await redis.exists(old.cancelled, old.task(cancelled.taskId))).toBe(0);
      expect(await client.getTask(cancelled.taskId)).toMatchObject({
        status: 'cancelled',
        name: 'note',
      });

      // The finished task stays where 0.1 left it, read there, until its TTL ends it.
      expect(await client.getTask(finished.taskId)).toMatchObject({
        status: 'success',
        duration: 3,
      });
      expect(await redis.exists(keys.task(finished.taskId))).toBe(0);
      expect(await redis.pttl(old.task(finished.taskId))).toBeLessThanOrEqual(2000);
      await waitFor(
        'the old record to expire',
        async () => (await client.getTask(finished.taskId)) === null,
        {
          timeout: 5000,
        },
      );
    });
  });
});
