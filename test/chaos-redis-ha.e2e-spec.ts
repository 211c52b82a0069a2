import { ClusterModule, ClusterService } from '@liaoliaots/nestjs-redis';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Cluster, Redis } from 'ioredis';
import {
  CogmanClient,
  CogmanModule,
  TaskCancelledError,
  TaskHandler,
  type CogmanModuleOptions,
  type CogmanTaskHandler,
  type TaskContext,
  type TaskRecord,
} from '@cogman/nestjs';
import { COGMAN_REDIS, type CogmanRedis } from '../libs/cogman/src/store/redis-connection';
import { redisKeys } from '../libs/cogman/src/store/redis-keys';
import {
  ChaosServices,
  CountStreamRuns,
  describeStream,
  runStream,
  streamRuns,
  type RedisCluster,
  type RedisSentinelGroup,
} from './support/chaos';
import { statusCounts, watchStatuses } from './support/chaos/status-watch';
import { startArchive } from './support/archive';
import { testHarness } from './support/harness';
import { dropDatabase, mongoUri } from './support/mongo';
import { AMQP_URI } from './support/services';
import { deferred, waitFor } from './support/wait';

const ran = new Map<string, number>();
const aborted = new Map<string, unknown>();
const started = new Map<string, number>();

@TaskHandler('note')
class Note implements CogmanTaskHandler {
  handle(_payload: unknown, ctx: TaskContext) {
    ran.set(ctx.task.taskId, Date.now());
  }
}

/** Runs until its signal aborts, and remembers why. */
@TaskHandler('until-abort')
class UntilAbort implements CogmanTaskHandler {
  async handle(_payload: unknown, ctx: TaskContext) {
    started.set(ctx.task.taskId, Date.now());
    await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
    aborted.set(ctx.task.taskId, ctx.signal.reason);
    throw ctx.signal.reason;
  }
}

/** Fails the first two attempts of a task, then succeeds. */
@TaskHandler('flaky')
class Flaky implements CogmanTaskHandler {
  handle(_payload: unknown, ctx: TaskContext) {
    if (ctx.task.attempt < 3) throw new Error(`attempt ${ctx.task.attempt} fails`);
  }
}

@TaskHandler('double')
class Double implements CogmanTaskHandler {
  handle(payload: number) {
    return payload * 2;
  }
}

const groupRunning = new Set<string>();
let groupGate = deferred();

/** One task of a group at a time, across every worker; each waits for the gate. */
@TaskHandler('grouped', { groupConcurrency: 1 })
class Grouped implements CogmanTaskHandler {
  async handle(_payload: unknown, ctx: TaskContext) {
    groupRunning.add(ctx.task.taskId);
    await groupGate.promise;
    groupRunning.delete(ctx.task.taskId);
  }
}

const HANDLERS = [Note, UntilAbort, Flaky, Double, Grouped, CountStreamRuns];

/** The stream of the chaos specs (test/chaos-broker.e2e-spec.ts), the fault struck at task 500. */
const STREAM = { task: 'chaos', total: 2000, rate: 250, inFlight: 50 } as const;

/** How each topology is set up, read and broken. */
interface Topology {
  title: string;
  /** The `redis` option of the applications. */
  redis(): CogmanModuleOptions['redis'];
  /** A client of the spec's own, to look at the keys. */
  reader(): Redis | Cluster;
  /** Kills the master holding `key`'s slot, waits until another has taken over; its port. */
  failOver(key: string): Promise<{ killed: number; promoted: number }>;
  /** Starts the killed node again, as a replica. */
  rejoin(port: number): Promise<void>;
  /** Where the keys of the namespace are: every one of them, on one node (its port). */
  keysOn(namespace: string): Promise<Map<number, string[]>>;
}

describe('Chaos: Cogman on a Redis Cluster and a Sentinel group (failover included)', () => {
  const chaos = new ChaosServices();
  const harness = testHarness();
  const report: string[] = [];
  const readers: { disconnect(): void }[] = [];

  afterEach(() => harness.afterEach());

  afterAll(async () => {
    for (const reader of readers) reader.disconnect();
    await chaos.stopAll();
    await harness.afterAll();
    console.log(`Cogman on Redis HA:\n${report.map((line) => `  ${line}`).join('\n')}`);
  });

  describe.each([
    [
      'Redis Cluster (3 masters, 3 replicas)',
      async (): Promise<Topology> => {
        const cluster: RedisCluster = await chaos.redisCluster();
        return {
          title: 'Redis Cluster',
          // The application's Cluster client, with ioredis's defaults: Cogman's copy of it has the
          // settings that carry it through a failover.
          redis: () => new Cluster(cluster.startupNodes, { lazyConnect: true }),
          reader: () => {
            const reader = new Cluster(cluster.startupNodes, {
              retryDelayOnFailover: 200,
              retryDelayOnClusterDown: 200,
              maxRedirections: 50,
            });
            reader.on('error', () => {});
            readers.push(reader);
            return reader;
          },
          failOver: async (key) => {
            const master = await cluster.masterOf(key);
            await cluster.kill(master);
            const promoted = await cluster.waitForFailover(key);
            return { killed: master.port, promoted: promoted.port };
          },
          rejoin: async (port) => {
            const back = await cluster.restart({ port });
            expect(back.role).toBe('replica');
          },
          keysOn: async (namespace) => {
            const found = new Map<number, string[]>();
            for (const node of (await cluster.refresh()).filter((n) => n.role === 'master')) {
              const reader = new Redis({ host: '127.0.0.1', port: node.port, lazyConnect: true });
              try {
                const keys = await reader.keys(`*${namespace}*`);
                if (keys.length) found.set(node.port, keys);
              } finally {
                reader.disconnect();
              }
            }
            return found;
          },
        };
      },
    ],
    [
      'Sentinel (a master, two replicas, three sentinels)',
      async (): Promise<Topology> => {
        const group: RedisSentinelGroup = await chaos.redisSentinel();
        const sentinelClient = () => {
          const reader = new Redis({ sentinels: group.sentinels, name: group.name });
          reader.on('error', () => {});
          readers.push(reader);
          return reader;
        };
        return {
          title: 'Sentinel',
          // ioredis options, as an application without a client of its own gives them.
          redis: () => ({ sentinels: group.sentinels, name: group.name }),
          reader: sentinelClient,
          failOver: async () => {
            const old = await group.killMaster();
            const promoted = await group.waitForNewMaster(old);
            return { killed: old.port, promoted: promoted.port };
          },
          rejoin: async (port) => {
            const back = await group.restart({ port });
            expect(back.role).toBe('replica');
          },
          keysOn: async (namespace) => {
            const master = await group.master();
            const reader = new Redis({ host: '127.0.0.1', port: master.port, lazyConnect: true });
            try {
              return new Map([[master.port, await reader.keys(`*${namespace}*`)]]);
            } finally {
              reader.disconnect();
            }
          },
        };
      },
    ],
  ])('%s', (_name, setUp) => {
    let topology: Topology;
    let reader: Redis | Cluster;

    beforeAll(async () => {
      topology = await setUp();
      reader = topology.reader();
    });

    const app = (namespace: string, options: Partial<CogmanModuleOptions> = {}) =>
      harness.app(
        {
          namespace,
          redisUri: undefined,
          redis: topology.redis(),
          requestTimeout: 2000,
          ...options,
        },
        HANDLERS,
      );

    const becomes = (client: CogmanClient, taskId: string, status: string) =>
      waitFor(
        `${taskId} to be ${status}`,
        async () => (await client.getTask(taskId))?.status === status,
      );

    it('runs the full task path, with every key of the namespace in one slot', async () => {
      const namespace = harness.namespace('ha-path');
      const client = (await app(namespace)).get(CogmanClient);
      const task = await client.sendTask({ name: 'note', payload: { n: 1 }, priority: 'high' });
      expect(task.status).toBe('queued');
      await becomes(client, task.taskId, 'success');
      expect(await client.getTask(task.taskId)).toMatchObject<Partial<TaskRecord>>({
        name: 'note',
        payload: { n: 1 },
        priority: 'high',
        startedAt: expect.any(Date),
      });
      const keys = redisKeys(namespace);
      await waitFor('the worker report', async () => (await reader.zcard(keys.workers)) === 1);
      expect(client.services().redis).toMatchObject({ connected: true });
      const where = await topology.keysOn(namespace);
      expect(where.size).toBe(1);
      const [found] = [...where.values()];
      expect(found).toEqual(expect.arrayContaining([keys.task(task.taskId), keys.workers]));
      expect(found.every((key) => key.startsWith(keys.prefix))).toBe(true);
    });

    it('runs delayed tasks when due, from the schedule', async () => {
      const namespace = harness.namespace('ha-delayed');
      const client = (await app(namespace)).get(CogmanClient);
      const sentAt = Date.now();
      const task = await client.sendTask({ name: 'note', delay: 800 });
      expect(task.status).toBe('scheduled');
      expect(await reader.zscore(redisKeys(namespace).scheduled, task.taskId)).not.toBeNull();
      await becomes(client, task.taskId, 'success');
      expect(ran.get(task.taskId)! - sentAt).toBeGreaterThanOrEqual(800);
      expect(await reader.zcard(redisKeys(namespace).scheduled)).toBe(0);
      expect(await reader.zcard(redisKeys(namespace).claimed)).toBe(0);
    });

    it('cancels a scheduled task and one waiting in its queue: neither runs', async () => {
      const namespace = harness.namespace('ha-cancel-queued');
      const producer = (await app(namespace, { startWorker: false })).get(CogmanClient);
      const scheduled = await producer.sendTask({ name: 'note', delay: 300 });
      const queued = await producer.sendTask({ name: 'note' });
      await producer.cancelTask(scheduled.taskId);
      await producer.cancelTask(queued.taskId);
      expect(await reader.zscore(redisKeys(namespace).cancelled, queued.taskId)).not.toBeNull();

      // A worker starts after the cancellations: it learns of them from the cancelled set.
      await app(namespace);
      const control = await producer.sendTask({ name: 'note', delay: 500 });
      await becomes(producer, control.taskId, 'success');
      expect(ran.has(scheduled.taskId)).toBe(false);
      expect(ran.has(queued.taskId)).toBe(false);
      expect((await producer.getTask(scheduled.taskId))?.status).toBe('cancelled');
      expect((await producer.getTask(queued.taskId))?.status).toBe('cancelled');
    });

    it('aborts a running handler when its task is cancelled, in another process of the namespace', async () => {
      const namespace = harness.namespace('ha-cancel-running');
      await app(namespace);
      const producer = (await app(namespace, { startWorker: false })).get(CogmanClient);
      const task = await producer.sendTask({ name: 'until-abort', retry: 2 });
      await waitFor('the handler to start', () => started.has(task.taskId));
      await producer.cancelTask(task.taskId);
      await waitFor('the handler to be aborted', () => aborted.has(task.taskId));
      expect(aborted.get(task.taskId)).toBeInstanceOf(TaskCancelledError);
      expect((await producer.getTask(task.taskId))?.status).toBe('cancelled');
      expect(await producer.getAttempts(task.taskId)).toHaveLength(1);
    });

    it('retries a failing task with backoff until it succeeds', async () => {
      const namespace = harness.namespace('ha-retry');
      const client = (await app(namespace)).get(CogmanClient);
      const task = await client.sendTask({
        name: 'flaky',
        retry: 3,
        backoff: { type: 'fixed', delay: 300 },
      });
      await waitFor('the third attempt to succeed', async () => {
        const attempts = await client.getAttempts(task.taskId);
        return attempts.length === 3 && attempts[2].status === 'success';
      });
      const attempts = await client.getAttempts(task.taskId);
      expect(attempts.map((attempt) => attempt.status)).toEqual(['retry', 'retry', 'success']);
      expect(attempts[0].failError).toContain('attempt 1 fails');
    });

    it('sends recurring tasks once a tick, deduplicates unique tasks, pauses and resumes a priority', async () => {
      const namespace = harness.namespace('ha-features');
      const client = (await app(namespace)).get(CogmanClient);
      // A recurring schedule (its claim script declares every schedule it reads).
      await client.upsertSchedule({ id: 'pulse', name: 'note', every: 1000 });
      const ticks = new Set<string>();
      await waitFor('two ticks to run', async () => {
        const taskId = (await client.getSchedule('pulse'))?.lastTask?.taskId;
        if (taskId && ran.has(taskId)) ticks.add(taskId);
        return ticks.size >= 2;
      });
      await client.removeSchedule('pulse');
      // A unique task: the second send answers with the first's record.
      const first = await client.sendTask({ name: 'note', delay: 60_000, unique: { key: 'once' } });
      const second = await client.sendTask({ name: 'note', unique: { key: 'once' } });
      expect(second).toMatchObject({ taskId: first.taskId, deduplicated: true });
      expect(await reader.get(redisKeys(namespace).unique('once'))).toBe(first.taskId);
      // A paused priority holds its tasks until resumed.
      expect((await client.pause('low')).low.paused).toBe(true);
      const held = await client.sendTask({ name: 'note' });
      await waitFor(
        'the task to wait in its queue',
        async () => (await client.queues()).queues.find((q) => q.kind === 'low')?.ready === 1,
      );
      expect(ran.has(held.taskId)).toBe(false);
      await client.resume('low');
      await becomes(client, held.taskId, 'success');
    });

    it('waits for a result without polling, and holds a group to its concurrency across the workers', async () => {
      const namespace = harness.namespace('ha-results');
      const client = (await app(namespace)).get(CogmanClient);
      // The outcome is published on the namespace's results channel, which the client follows.
      const done = await client.sendAndWait({ name: 'double', payload: 21 }, { timeout: 20_000 });
      expect(done).toMatchObject({ status: 'success', result: 42 });
      groupGate = deferred();
      const [a, b] = await client.sendTasks([
        { name: 'grouped', group: 'g' },
        { name: 'grouped', group: 'g' },
      ]);
      await waitFor('one of the group to run', () => groupRunning.size === 1);
      // The group's leases are found by a SCAN of the namespace's node.
      const limits = (await client.limits()).find((limit) => limit.name === 'grouped');
      expect(limits?.groupConcurrency).toEqual({ slots: 1, groups: [{ group: 'g', running: 1 }] });
      groupGate.resolve();
      await becomes(client, a.taskId, 'success');
      await becomes(client, b.taskId, 'success');
    });

    it("loses no task and never moves a status back when the namespace's master is killed mid-stream", async () => {
      const namespace = harness.namespace('ha-failover');
      const client = (await app(namespace)).get(CogmanClient);
      const keys = redisKeys(namespace);
      // The ids as sendTask resolves with them, for the status watch.
      const accepted: string[] = [];
      const counting = {
        sendTask: async (options: Parameters<CogmanClient['sendTask']>[0]) => {
          const record = await client.sendTask(options);
          accepted.push(record.taskId);
          return record;
        },
      } as CogmanClient;
      const watch = watchStatuses(
        reader,
        (taskId) => keys.task(taskId),
        () => accepted,
      );
      const failover = deferred<{ killed: number; promoted: number; ms: number }>();
      streamRuns.clear();

      const stream = await runStream({
        client: counting,
        ...STREAM,
        runs: () => streamRuns,
        faults: [
          {
            after: 500,
            name: `${topology.title} master killed`,
            run: async () => {
              const killedAt = Date.now();
              const ports = await topology.failOver(keys.scheduled);
              failover.resolve({ ...ports, ms: Date.now() - killedAt });
            },
          },
        ],
        settle: 90_000,
      });
      const { killed, promoted, ms } = await failover.promise;
      // Writes held through the failover land; then every record says success.
      await waitFor('every record to say success', async () => {
        const statuses = await Promise.all(accepted.map((id) => reader.hget(keys.task(id), 'status')));
        return statuses.every((status) => status === 'success');
      }, { timeout: 60_000, interval: 500 }); // prettier-ignore
      const seen = await watch.stop();

      const summary = [
        describeStream(
          `${topology.title}: the namespace's master (${killed}) killed after 500 tasks, ${promoted} took over after ${ms} ms:`,
          stream,
        ),
        `  task log: read ${seen.rounds} times through the failover (${seen.failedReads} reads failed), statuses at the end: ${statusCounts(seen)}, moved back: ${seen.regressions.length}`,
        ...(seen.regressions.length ? [`  moved back: ${seen.regressions.slice(0, 5).join('; ')}`] : []),
      ].join('\n'); // prettier-ignore
      console.log(summary);
      report.push(...summary.split('\n'));
      expect(stream.rejected).toBe(0);
      expect(stream.lost).toBe(0);
      expect(seen.regressions).toEqual([]);
      expect(statusCounts(seen)).toBe(`success ${stream.accepted}`);

      // Cogman's clients went on through it: the worker still runs tasks and hears of
      // cancellations (its subscription followed), and the node rejoins.
      const running = await client.sendTask({ name: 'until-abort' });
      await waitFor('the handler to start', () => started.has(running.taskId));
      await client.cancelTask(running.taskId);
      await waitFor('the handler to be aborted', () => aborted.has(running.taskId));
      await topology.rejoin(killed);
      const after = await client.sendTask({ name: 'note' });
      await becomes(client, after.taskId, 'success');
    });
  });

  describe("Redis Cluster: Cogman's copy of a Cluster client, its subscription, the archive", () => {
    let cluster: RedisCluster;

    beforeAll(async () => {
      cluster = await chaos.redisCluster();
    });

    /** The port of the node a connection of this name is open on. */
    async function nodeWith(connectionName: string): Promise<number | undefined> {
      for (const node of await cluster.refresh()) {
        if (node.pid === undefined) continue;
        const direct = new Redis({ host: '127.0.0.1', port: node.port, lazyConnect: true });
        try {
          const list = (await direct.client('LIST')) as string;
          if (list.includes(`name=${connectionName} `)) return node.port;
        } finally {
          direct.disconnect();
        }
      }
      return undefined;
    }

    it('copies a Cluster client with failover settings of its own, and follows cancellations when the node of its subscription dies', async () => {
      const namespace = harness.namespace('ha-subscriber');
      const given = new Cluster(cluster.startupNodes, {
        lazyConnect: true,
        maxRedirections: 16,
        scaleReads: 'slave',
      });
      const worker = await harness.app({ namespace, redisUri: undefined, redis: given }, HANDLERS);
      const copy = worker.get<CogmanRedis>(COGMAN_REDIS) as Cluster;
      expect(copy).not.toBe(given);
      expect(copy.options).toMatchObject({
        maxRedirections: 300,
        retryDelayOnFailover: 200,
        retryDelayOnClusterDown: 200,
        scaleReads: 'master',
        enableAutoPipelining: false,
        redisOptions: { connectionName: 'cogman', maxRetriesPerRequest: null },
      });
      const client = worker.get(CogmanClient);
      const port = await waitFor('the subscription', () => nodeWith('cogman-cancel'));

      await cluster.kill({ port });
      await cluster.waitForFailover(0);
      await waitFor('the subscription on another node', async () => {
        const now = await nodeWith('cogman-cancel');
        return now !== undefined && now !== port;
      });
      const task = await client.sendTask({ name: 'until-abort' });
      await waitFor('the handler to start', () => started.has(task.taskId));
      await client.cancelTask(task.taskId);
      await waitFor('the handler to be aborted', () => aborted.has(task.taskId));
      expect(aborted.get(task.taskId)).toBeInstanceOf(TaskCancelledError);
      await cluster.restart({ port });
    });

    it("runs on the application's @liaoliaots/nestjs-redis ClusterModule client; every client closes with the application", async () => {
      const namespace = harness.namespace('ha-cluster-module');
      @Module({
        imports: [
          ClusterModule.forRoot({
            config: { namespace: 'cogman', nodes: cluster.startupNodes },
            errorLog: false,
          }),
          CogmanModule.forRootAsync({
            inject: [ClusterService],
            useFactory: (clusters: ClusterService) => ({
              amqpUri: AMQP_URI,
              redis: clusters.getOrThrow('cogman'),
              namespace,
            }),
          }),
        ],
        providers: HANDLERS,
      })
      class AppModule {}
      const app = await NestFactory.createApplicationContext(AppModule, { logger: ['error'] });
      let own: Cluster | undefined;
      let copy: Cluster | undefined;
      try {
        own = app.get(ClusterService).getOrThrow('cogman');
        copy = app.get<CogmanRedis>(COGMAN_REDIS) as Cluster;
        expect(copy).not.toBe(own);
        const client = app.get(CogmanClient);
        const task = await client.sendTask({ name: 'note' });
        await becomesSuccess(client, task.taskId);
      } finally {
        await app.close();
      }
      await waitFor('both clients to close', () => own?.status === 'end' && copy?.status === 'end');
    });

    it('with MongoDB, schedules again a delayed task whose record a failover lost', async () => {
      const namespace = harness.namespace('ha-restore');
      const database = `cogman_${namespace.replace(/-/g, '_')}`;
      try {
        const client = (
          await harness.app(
            {
              namespace,
              redisUri: undefined,
              redis: new Cluster(cluster.startupNodes, { lazyConnect: true }),
              mongoUri: mongoUri(database),
            },
            HANDLERS,
          )
        ).get(CogmanClient);
        await waitFor('the archive to connect', () => client.services().mongo?.connected);
        const task = await client.sendTask({ name: 'note', delay: 6000 });
        const archive = startArchive(mongoUri(database));
        try {
          await waitFor(
            'the archive to hold the scheduled task',
            async () =>
              (await archive.archive.list({ status: ['scheduled'], limit: 1 })).total === 1,
            { timeout: 30_000, interval: 250 },
          );
        } finally {
          await archive.close();
        }
        // A write the master acknowledged and died before replicating: the promoted replica has
        // neither the record nor the schedule entry. (Removed here, then the master is killed.)
        const keys = redisKeys(namespace);
        const reader = new Cluster(cluster.startupNodes);
        try {
          await reader.multi().del(keys.task(task.taskId)).zrem(keys.scheduled, task.taskId).exec();
        } finally {
          reader.disconnect();
        }
        const master = await cluster.masterOf(keys.scheduled);
        await cluster.kill(master);
        await cluster.waitForFailover(keys.scheduled);
        await waitFor('the task to run', () => ran.has(task.taskId), { timeout: 30_000 });
        await becomesSuccess(client, task.taskId);
        await cluster.restart(master);
      } finally {
        await dropDatabase(database);
      }
    });
  });
});

async function becomesSuccess(client: CogmanClient, taskId: string): Promise<void> {
  await waitFor(
    `${taskId} to succeed`,
    async () => (await client.getTask(taskId))?.status === 'success',
  );
}
