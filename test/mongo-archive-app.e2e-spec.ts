import type { INestApplicationContext } from '@nestjs/common';
import { getConnectionToken } from '@nestjs/mongoose';
import { ConnectionStates, type Connection, type mongo } from 'mongoose';
import {
  CogmanClient,
  TaskHandler,
  type CogmanTaskHandler,
  type TaskContext,
  type TaskRecord,
} from '@cogman/nestjs';
import { startApp } from './support/app';
import { dropDatabase, mongoUri, openMongo } from './support/mongo';
import { cleanUp, openRedis, uniqueNamespace } from './support/services';
import { deferred, waitFor } from './support/wait';

const namespace = uniqueNamespace('archive-app');
const database = namespace;

const runs = new Map<string, number>();
const gate = deferred();

@TaskHandler('ok')
class OkHandler implements CogmanTaskHandler {
  handle(_payload: unknown, ctx: TaskContext) {
    runs.set(ctx.task.taskId, (runs.get(ctx.task.taskId) ?? 0) + 1);
  }
}

/** Fails its first attempt. */
@TaskHandler('flaky')
class FlakyHandler implements CogmanTaskHandler {
  handle(_payload: unknown, ctx: TaskContext) {
    if (ctx.task.attempt === 1) throw new Error('first attempt fails');
  }
}

@TaskHandler('broken')
class BrokenHandler implements CogmanTaskHandler {
  handle() {
    throw new Error('always broken');
  }
}

/** Runs until the spec opens the gate. */
@TaskHandler('slow')
class SlowHandler implements CogmanTaskHandler {
  async handle() {
    await gate.promise;
  }
}

describe('The MongoDB archive of a Cogman application', () => {
  let app: INestApplicationContext;
  let client: CogmanClient;
  let mongoClient: mongo.MongoClient;
  let tasks: mongo.Collection;

  beforeAll(async () => {
    app = await startApp({ namespace, mongoUri: mongoUri(database), highPriorityConcurrency: 50 }, [
      OkHandler,
      FlakyHandler,
      BrokenHandler,
      SlowHandler,
    ]);
    client = app.get(CogmanClient);
    mongoClient = await openMongo();
    tasks = mongoClient.db(database).collection('tasks');
  });

  let closed = false;

  afterAll(async () => {
    gate.resolve();
    if (!closed) await app?.close();
    await mongoClient?.close();
    await cleanUp(namespace);
    await dropDatabase(database);
  });

  const archived = (taskId: string) => tasks.findOne({ _id: taskId as never });

  it('reports the archive connected, and shares its connection as "cogman"', async () => {
    await waitFor('the archive to connect', () => client.services().mongo?.connected);
    expect(client.services().mongo).toEqual({ uri: mongoUri(database), connected: true });
    const connection = app.get<Connection>(getConnectionToken('cogman'));
    expect(connection.readyState).toBe(ConnectionStates.connected);
    expect(connection.name).toBe(database);
  });

  it('archives every status change as it happens, ending with each attempt’s final status', async () => {
    const slow = await client.sendTask({ name: 'slow', payload: { wait: true }, primaryKey: 'k1' });
    await waitFor('in_progress in the archive', async () => {
      return (await archived(slow.taskId))?.status === 'in_progress';
    });
    gate.resolve();

    const ok = await client.sendTask({ name: 'ok', payload: { n: 1 }, priority: 'high' });
    const flaky = await client.sendTask({ name: 'flaky', retry: 2 });
    const broken = await client.sendTask({ name: 'broken', payload: Buffer.from([7]) });
    const final = async (taskId: string, status: string) =>
      waitFor(`${taskId} to be archived ${status}`, async () => {
        const doc = await archived(taskId);
        return doc?.status === status ? doc : null;
      });

    expect(await final(slow.taskId, 'success')).toMatchObject({
      name: 'slow',
      primary_key: 'k1',
      status_rank: 4,
      duration: expect.any(Number),
    });
    expect(await final(ok.taskId, 'success')).toMatchObject({ priority: 'high', attempt: 1 });
    expect(await final(flaky.taskId, 'retry')).toMatchObject({
      fail_error: 'first attempt fails',
      retry: 2,
    });
    const [, second] = await client.getAttempts(flaky.taskId);
    expect(await final(second.taskId, 'success')).toMatchObject({
      attempt: 2,
      original_task_id: flaky.taskId,
    });
    expect(await final(broken.taskId, 'failed')).toMatchObject({
      fail_error: 'always broken',
      payload_type: 'binary',
    });
  });

  it('answers getTask from the archive once the Redis record is gone', async () => {
    const task = await client.sendTask({ name: 'flaky', payload: { keep: 'me' }, retry: 1 });
    const attempts = await waitFor('both attempts to finish in the archive', async () => {
      const chain = await client.getAttempts(task.taskId);
      if (chain.length !== 2) return null;
      const docs = await Promise.all(chain.map((attempt) => archived(attempt.taskId)));
      return docs.every((doc) => doc?.status === 'retry' || doc?.status === 'success')
        ? chain
        : null;
    });
    const redis = openRedis();
    try {
      for (const attempt of attempts) {
        expect(await redis.unlink(`cogman:{${namespace}}:task:${attempt.taskId}`)).toBe(1);
      }
    } finally {
      redis.disconnect();
    }
    const record = await client.getTask(task.taskId);
    expect(record).toMatchObject<Partial<TaskRecord>>({
      taskId: task.taskId,
      name: 'flaky',
      status: 'retry',
      failError: 'first attempt fails',
      payload: { keep: 'me' },
    });
    const chain = await client.getAttempts(task.taskId);
    expect(chain.map((attempt) => attempt.status)).toEqual(['retry', 'success']);
    expect(await client.getTask('never-sent')).toBeNull();
  });

  // FerretDB's SQLite backend scans the collection for every update, so the archive of thousands
  // of tasks takes it minutes; processing must not wait for it.
  it('never holds thousands of tasks back, and archives them all in the end', async () => {
    const total = 2_000;
    const sent = await client.sendTasks(
      Array.from({ length: total }, (_, n) => ({
        name: 'ok',
        payload: { n },
        priority: n % 2 ? ('high' as const) : ('low' as const),
      })),
    );
    await waitFor('every task to run', () => sent.every((task) => runs.has(task.taskId)), {
      timeout: 90_000,
    });
    await waitFor(
      'every record to be success in Redis',
      async () => {
        const records = await Promise.all(sent.map((task) => client.getTask(task.taskId)));
        return records.every((record) => record?.status === 'success');
      },
      { timeout: 60_000 },
    );
    expect(sent.every((task) => runs.get(task.taskId) === 1)).toBe(true);
    const ids = sent.map((task) => task.taskId);
    await waitFor(
      'the archive to have every task as success',
      async () =>
        (await tasks.countDocuments({ _id: { $in: ids as never[] }, status: 'success' })) === total,
      { timeout: 360_000, interval: 1_000 },
    );
  }, 480_000);

  it('closes its connection on shutdown, after writing what it held', async () => {
    const connection = app.get<Connection>(getConnectionToken('cogman'));
    const last = await client.sendTask({ name: 'ok', payload: 'last' });
    await waitFor('the last task to run', () => runs.has(last.taskId));
    await app.close();
    closed = true;
    expect(connection.readyState).toBe(ConnectionStates.disconnected);
    expect(await archived(last.taskId)).toMatchObject({ status: 'success' });
  });
});
