import { Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { setTimeout as delay } from 'node:timers/promises';
import {
  CogmanClient,
  TaskHandler,
  type CogmanTaskHandler,
  type TaskContext,
} from '@cogman/nestjs';
import { TASK_ARCHIVE, type TaskArchive } from '../libs/cogman/src/store/task-archive';
import { startArchive } from './support/archive';
import {
  ChaosServices,
  describeStream,
  runStream,
  type IsolatedFerretDB,
  type IsolatedRabbitMQ,
} from './support/chaos';
import { testHarness } from './support/harness';
import { dropDatabase, mongoUri, openMongo, withDatabase } from './support/mongo';
import { openRedis, queueNames, uniqueNamespace } from './support/services';
import { deferred, waitFor } from './support/wait';
import { runCounts, runsKey, stopWorkerProcess } from './support/worker-process';

let redis: Redis;
let namespace = '';

/** Counts runs in Redis under the running spec's namespace, like the worker fixture does. */
@TaskHandler('work')
class CountRuns implements CogmanTaskHandler {
  async handle(_payload: unknown, ctx: TaskContext) {
    await redis.incr(runsKey(namespace, ctx.task.taskId));
  }
}

/** Handlers that hold their slot until the spec lets them go: tasks that stay in progress. */
const release = deferred();
async function holdSlot(ctx: TaskContext): Promise<void> {
  await redis.incr(runsKey(namespace, ctx.task.taskId));
  await release.promise;
}

@TaskHandler('hold')
@Injectable()
class Hold implements CogmanTaskHandler {
  handle(_payload: unknown, ctx: TaskContext) {
    return holdSlot(ctx);
  }
}

@TaskHandler('work')
@Injectable()
class HoldWork implements CogmanTaskHandler {
  handle(_payload: unknown, ctx: TaskContext) {
    return holdSlot(ctx);
  }
}

const countRuns = (ids: string[]) => runCounts(redis, namespace, ids);

describe('Chaos with the MongoDB archive', () => {
  const chaos = new ChaosServices();
  const harness = testHarness();
  const databases: string[] = [];
  let broker: IsolatedRabbitMQ;

  const database = (label: string) => {
    const name = uniqueNamespace(label).replace(/-/g, '_');
    databases.push(name);
    return name;
  };

  beforeAll(async () => {
    redis = openRedis();
    broker = await chaos.rabbitmq();
  });

  afterEach(() => harness.afterEach());

  afterAll(async () => {
    release.resolve();
    redis.disconnect();
    await harness.afterAll();
    await chaos.stopAll();
    for (const name of databases) await dropDatabase(name);
  });

  it('publishes, once, the offline tasks of a producer killed while holding them', async () => {
    namespace = harness.namespace('chaos-reenqueue');
    const db = mongoUri(database('reenqueue'));
    const env = {
      COGMAN_TEST_AMQP_URI: broker.uri,
      COGMAN_TEST_MONGO_URI: db,
      COGMAN_START_WORKER: 'false',
      // How long sendTask waits for MongoDB to hold an offline task: room for 300 at once on a
      // busy FerretDB. The leases last three times this (15 s) before the takeover.
      COGMAN_REQUEST_TIMEOUT: '5000',
      COGMAN_SEND: '300',
    };
    const doomed = await harness.worker(namespace, env);
    let sent: string[][];
    await broker.stopApp();
    try {
      doomed.child.kill('SIGUSR2');
      await waitFor('the producer to accept its tasks', () => doomed.output().includes('sent\n'));
      sent = (await redis.lrange(`test:${namespace}:sent`, 0, -1)).map((line) => line.split(' '));
      expect(sent).toHaveLength(300);
      expect(new Set(sent.map(([, status]) => status))).toEqual(new Set(['initiated']));
      // sendTask resolved only once MongoDB held each task and its lease.
      const mongo = await openMongo(db);
      try {
        expect(
          await mongo
            .db()
            .collection('tasks')
            .countDocuments({ owner: { $exists: true } }),
        ).toBe(300);
      } finally {
        await mongo.close();
      }
      await stopWorkerProcess(doomed, 'SIGKILL');
    } finally {
      // The next cases need the broker, whatever happened here.
      await broker.startApp();
    }

    // Two producers (one also a worker) start: between them, each task is published once.
    const options = { namespace, amqpUri: broker.uri, mongoUri: db, requestTimeout: 1000 };
    await harness.app({ ...options, startWorker: false });
    await harness.app(options, [CountRuns]);
    const ids = sent.map(([taskId]) => taskId);
    await waitFor('every task to run', async () => (await countRuns(ids)).size === ids.length, {
      timeout: 60_000,
      interval: 250,
    });
    // Past several lease periods, no task ran a second time.
    await waitFor('the leases of the takeover to lapse', async () => {
      const client = await openMongo(db);
      try {
        const held = await client.db().collection('tasks').countDocuments({ status: 'initiated' });
        return held === 0;
      } finally {
        await client.close();
      }
    });
    const runs = await countRuns(ids);
    const duplicated = [...runs.values()].filter((count) => count > 1).length;
    console.log(
      `Producer killed holding 300 offline tasks (MongoDB on), two producers started: sent 300, processed ${runs.size}, duplicated ${duplicated}, lost ${ids.length - runs.size}`,
    );
    expect(runs.size).toBe(300);
    expect(duplicated).toBe(0);
  });

  it('re-publishes none of thousands of finished, queued and running tasks on a restart', async () => {
    namespace = harness.namespace('chaos-restart-archive');
    const name = database('restart');
    const db = mongoUri(name);
    const options = { namespace, amqpUri: broker.uri, mongoUri: db, requestTimeout: 1000 };

    // 1200 finished; then 21 running (20 high, 1 low) and 799 left in the queue.
    const worker = await harness.app(options, [CountRuns]);
    const finished = await worker
      .get(CogmanClient)
      .sendTasks(Array.from({ length: 1200 }, () => ({ name: 'work' })));
    const finishedIds = finished.map((task) => task.taskId);
    await waitFor(
      'the first tasks to finish',
      async () => (await countRuns(finishedIds)).size === 1200,
      { timeout: 60_000, interval: 250 },
    );
    await worker.close();
    // A worker whose every slot holds: 20 high, 1 low, reading nothing ahead (so one low message).
    const producer = (
      await harness.app(
        {
          ...options,
          highPriorityConcurrency: 20,
          lowPriorityConcurrency: 1,
          prefetchMultiplier: 1,
        },
        [Hold, HoldWork],
      )
    ).get(CogmanClient);
    const high = await producer.sendTasks(
      Array.from({ length: 20 }, () => ({ name: 'hold', priority: 'high' as const })),
    );
    const low = await producer.sendTasks(Array.from({ length: 800 }, () => ({ name: 'work' })));
    const pending = [...high, ...low].map((task) => task.taskId);
    await waitFor('the held tasks to run', async () => (await countRuns(pending)).size === 21);

    // The archive has caught up with all of it.
    const archive = startArchive(db);
    try {
      await waitFor(
        'the archive to hold every task in its status',
        async () => {
          const page = await archive.archive.list({ limit: 1 });
          const counts = await Promise.all(
            (['success', 'queued', 'in_progress'] as const).map(
              async (status) => (await archive.archive.list({ status: [status], limit: 1 })).total,
            ),
          );
          return page.total === 2020 && counts.join() === '1200,799,21';
        },
        { timeout: 180_000, interval: 1000 },
      );
      // What re-enqueue would take over: nothing.
      expect(await archive.archive.claimOrphans('probe', 1000, 500)).toEqual([]);
    } finally {
      await archive.close();
    }

    // A producer starts; its re-enqueue rounds (every lease / 3 = 1 s) find nothing to take over.
    const restarted = await harness.app({ ...options, startWorker: false });
    const restartedArchive = restarted.get<TaskArchive>(TASK_ARCHIVE);
    const rounds: number[] = [];
    const claim = restartedArchive.claimOrphans.bind(restartedArchive);
    restartedArchive.claimOrphans = async (...args) => {
      const claimed = await claim(...args);
      rounds.push(claimed.length);
      return claimed;
    };
    await waitFor('three re-enqueue rounds', () => rounds.length >= 3, { timeout: 20_000 });
    expect(rounds.every((count) => count === 0)).toBe(true);
    const amqp = await import('amqplib').then((lib) => lib.connect(broker.uri));
    try {
      const channel = await amqp.createChannel();
      let depth = 0;
      for (const queue of queueNames(namespace).low)
        depth += (await channel.checkQueue(queue)).messageCount;
      expect(depth).toBe(799);
    } finally {
      await amqp.close();
    }

    // Everything then runs exactly once.
    release.resolve();
    await harness.app(options, [CountRuns, Hold]);
    const all = [...finishedIds, ...pending];
    await waitFor(
      'every task to have run',
      async () => (await countRuns(all)).size === all.length,
      {
        timeout: 60_000,
        interval: 250,
      },
    );
    const runs = await countRuns(all);
    const duplicated = [...runs.values()].filter((count) => count > 1).length;
    console.log(
      `Restart over an archive of 1200 finished, 799 queued and 21 running tasks: sent ${all.length}, processed ${runs.size}, re-published ${rounds.reduce((sum, count) => sum + count, 0)}, duplicated ${duplicated}, lost ${all.length - runs.size}`,
    );
    expect([...runs.values()].filter((count) => count !== 1)).toEqual([]);
  });

  it('schedules again, from the archive, the delayed tasks Redis lost in a restart', async () => {
    namespace = harness.namespace('chaos-schedule-restore');
    const db = mongoUri(database('schedule'));
    // No persistence: a restart comes back empty.
    const isolated = await chaos.redis({ persistence: 'none' });
    const client = (
      await harness.app({ namespace, amqpUri: broker.uri, redisUri: isolated.uri, mongoUri: db }, [
        CountRuns,
      ])
    ).get(CogmanClient);
    await waitFor('the archive to connect', () => client.services().mongo?.connected);
    const sent = await client.sendTasks(
      Array.from({ length: 50 }, () => ({ name: 'work', delay: 10_000 })),
    );
    expect(new Set(sent.map((task) => task.status))).toEqual(new Set(['scheduled']));
    const archive = startArchive(db);
    try {
      await waitFor(
        'the archive to hold the scheduled tasks',
        async () => (await archive.archive.list({ status: ['scheduled'], limit: 1 })).total === 50,
        { timeout: 60_000, interval: 250 },
      );
    } finally {
      await archive.close();
    }

    // Redis restarts without persistence: the records and the schedule are gone.
    await isolated.restart();
    const ids = sent.map((task) => task.taskId);
    await waitFor('every task to run', async () => (await countRuns(ids)).size === ids.length, {
      timeout: 60_000,
      interval: 250,
    });
    const runs = await countRuns(ids);
    const duplicated = [...runs.values()].filter((count) => count > 1).length;
    console.log(
      `Redis restarted without its data while 50 tasks were scheduled (MongoDB on): sent 50, processed ${runs.size}, duplicated ${duplicated}, lost ${ids.length - runs.size}`,
    );
    expect(duplicated).toBe(0);
    const records = await Promise.all(ids.map((id) => client.getTask(id)));
    for (const [i, record] of records.entries()) {
      expect(record?.status).toBe('success');
      expect(record!.updatedAt.getTime()).toBeGreaterThanOrEqual(sent[i].runAt!.getTime());
    }
  });

  it('loses nothing and archives every final status when MongoDB restarts mid-stream', async () => {
    namespace = harness.namespace('chaos-mongo-restart');
    const ferret: IsolatedFerretDB = await chaos.ferretdb();
    const client = (
      await harness.app(
        { namespace, amqpUri: broker.uri, mongoUri: withDatabase(ferret.uri, 'chaos') },
        [CountRuns],
      )
    ).get(CogmanClient);
    await waitFor('the archive to connect', () => client.services().mongo?.connected);
    const report = await runStream({
      client,
      task: 'work',
      total: 1000,
      rate: 250,
      inFlight: 50,
      runs: countRuns,
      faults: [
        {
          after: 300,
          name: 'MongoDB down for 2 s',
          run: async () => {
            await ferret.kill();
            await delay(2000);
            await ferret.start();
          },
        },
      ],
    });
    console.log(describeStream('MongoDB (FerretDB) killed, down for 2 s, started again:', report));
    expect(report.rejected).toBe(0);
    expect(report.lost).toBe(0);

    const archive = startArchive(withDatabase(ferret.uri, 'chaos'));
    try {
      await waitFor(
        'every task to be archived as success',
        async () =>
          (await archive.archive.list({ status: ['success'], limit: 1 })).total === report.accepted,
        { timeout: 180_000, interval: 1000 },
      );
    } finally {
      await archive.close();
    }
  });
});
