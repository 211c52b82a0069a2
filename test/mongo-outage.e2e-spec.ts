import type { INestApplicationContext } from '@nestjs/common';
import { getConnectionToken } from '@nestjs/mongoose';
import type { Connection, mongo } from 'mongoose';
import {
  CogmanClient,
  TaskHandler,
  type CogmanTaskHandler,
  type TaskContext,
  type TaskRecord,
} from '@cogman/nestjs';
import { TASK_INDEXES } from '../libs/cogman/src/store/archive/task.schema';
import { startApp } from './support/app';
import { CapturedLogs } from './support/logs';
import { IsolatedFerretDB } from './support/chaos';
import { openMongo, withDatabase } from './support/mongo';
import { cleanUp, uniqueNamespace } from './support/services';
import { waitFor } from './support/wait';

const runs = new Set<string>();

@TaskHandler('work')
class WorkHandler implements CogmanTaskHandler {
  handle(_payload: unknown, ctx: TaskContext) {
    runs.add(ctx.task.taskId);
  }
}

/**
 * These specs stop and start MongoDB under a running application, so they use a FerretDB of
 * their own (a free port, a temporary directory), killed by its PID; the shared server on 27017
 * is never touched.
 */
describe('Cogman while MongoDB is unreachable', () => {
  const ferret = new IsolatedFerretDB();
  const namespaces: string[] = [];
  const apps: INestApplicationContext[] = [];
  const clients: mongo.MongoClient[] = [];

  beforeAll(async () => {
    await ferret.reserve();
  });

  afterAll(async () => {
    try {
      for (const app of apps) await app.close();
      for (const client of clients) await client.close();
      for (const namespace of namespaces) await cleanUp(namespace);
    } finally {
      await ferret.stop();
    }
  });

  async function boot(label: string, options: { database?: string; archiveBufferSize?: number }) {
    const namespace = uniqueNamespace(label);
    namespaces.push(namespace);
    const logs = new CapturedLogs();
    const base = options.database ? withDatabase(ferret.uri, options.database) : ferret.uri;
    const app = await startApp(
      {
        namespace,
        mongoUri: base,
        shutdownTimeout: 3_000,
        archiveBufferSize: options.archiveBufferSize,
      },
      [WorkHandler],
      { logger: logs },
    );
    apps.push(app);
    return { app, client: app.get(CogmanClient), logs };
  }

  async function inspect(database: string) {
    const client = await openMongo(ferret.uri);
    clients.push(client);
    return client.db(database).collection('tasks');
  }

  async function sendAndRun(client: CogmanClient, count: number): Promise<TaskRecord[]> {
    const sent = await client.sendTasks(
      Array.from({ length: count }, (_, n) => ({ name: 'work', payload: { n } })),
    );
    expect(sent.every((task) => task.status === 'queued')).toBe(true);
    await waitFor('every task to run and be recorded success in Redis', async () => {
      if (!sent.every((task) => runs.has(task.taskId))) return false;
      const records = await Promise.all(sent.map((task) => client.getTask(task.taskId)));
      return records.every((record) => record?.status === 'success');
    });
    return sent;
  }

  it('boots and runs tasks with MongoDB down, then archives them once it is up', async () => {
    expect(ferret.pid).toBeUndefined();
    const { client, logs } = await boot('mongo-down-at-boot', {});
    expect(client.services().mongo).toEqual({ uri: ferret.uri, connected: false });

    const sent = await sendAndRun(client, 40);
    await waitFor(
      'the warning that MongoDB is unreachable',
      () => logs.find('warn', 'MongoDB archive unreachable').length === 1,
    );

    await ferret.start();
    await waitFor('the archive to connect', () => client.services().mongo?.connected, {
      timeout: 60_000,
    });
    // No database in the URI: the archive is in "cogman".
    const tasks = await inspect('cogman');
    const ids = sent.map((task) => task.taskId);
    await waitFor(
      'every task archived as success',
      async () =>
        (await tasks.countDocuments({ _id: { $in: ids as never[] }, status: 'success' })) ===
        ids.length,
      { timeout: 60_000, interval: 250 },
    );
  });

  it('keeps sending and running tasks when MongoDB goes away, and catches up when it returns', async () => {
    await ferret.start();
    const database = 'midstream';
    // The driver reports every command it sends, to check what happens to the indexes.
    const { app, client, logs } = await boot('mongo-midstream', {
      database: `${database}?monitorCommands=true`,
    });
    const connection = app.get<Connection>(getConnectionToken('cogman'));
    const tasks = await inspect(database);
    await waitFor('the archive to connect', () => client.services().mongo?.connected);
    const commands: string[] = [];
    connection.getClient().on('commandStarted', (event) => commands.push(event.commandName));
    await waitFor('the indexes', async () => {
      const names = (await tasks.listIndexes().toArray()).map((index) => index.name as string);
      return TASK_INDEXES.every((index) => names.includes(index.options.name));
    });
    // The TTL index is tried last (FerretDB refuses it): from here on, the indexes are in place.
    await waitFor('the TTL index to be tried', () => logs.find('warn', 'no TTL indexes').length);
    commands.length = 0;

    const before = await sendAndRun(client, 30);
    const archivedSuccess = async (sent: TaskRecord[]) =>
      (await tasks.countDocuments({
        _id: { $in: sent.map((task) => task.taskId) as never[] },
        status: 'success',
      })) === sent.length;
    await waitFor('the first tasks to be archived', () => archivedSuccess(before));

    await ferret.kill();
    const during = await sendAndRun(client, 30);
    await waitFor('the archive to notice', () => client.services().mongo?.connected === false, {
      timeout: 60_000,
    });
    expect(await client.getTask(during[0].taskId)).toMatchObject({ status: 'success' });

    const indexCommands = () =>
      commands.filter((name) => name === 'createIndexes' || name === 'dropIndexes');
    const beforeRestart = commands.length;
    await ferret.start();
    await waitFor('the archive to catch up', () => archivedSuccess(during), {
      timeout: 90_000,
      interval: 250,
    });
    expect(await archivedSuccess(before)).toBe(true);
    expect(client.services().mongo?.connected).toBe(true);
    expect(logs.find('warn', 'MongoDB archive write failed').length).toBeGreaterThanOrEqual(1);
    // On reconnection the indexes were checked, and none was created or dropped.
    await waitFor('the indexes to be checked again', () =>
      commands.slice(beforeRestart).includes('listIndexes'),
    );
    expect(indexCommands()).toEqual([]);
  });

  it('holds at most archiveBufferSize changes while MongoDB is down, warning once and counting the rest', async () => {
    await ferret.kill();
    const { client, logs } = await boot('mongo-buffer', {
      database: 'buffer',
      archiveBufferSize: 40,
    });
    // 45 short tasks make at least 90 status changes (queued, then success: in_progress only
    // for an attempt running longer than progressAfter): 50 too many.
    const sent = await sendAndRun(client, 45);
    expect(logs.find('warn', 'buffer is full')).toHaveLength(1);
    expect(logs.find('warn', 'buffer is full')[0]).toContain('40 status changes waiting');

    await ferret.start();
    const [lost] = await waitFor(
      'the count of changes that were not archived',
      () => {
        const found = logs.find('warn', 'status change(s) were not archived');
        return found.length === 1 ? found : null;
      },
      { timeout: 60_000 },
    );
    expect(
      Number(/(\d+) status change\(s\) were not archived/.exec(lost)?.[1]),
    ).toBeGreaterThanOrEqual(50);
    const tasks = await inspect('buffer');
    await waitFor('what was held to be written', async () => (await tasks.countDocuments()) > 0);
    const archived = await tasks.find({}).toArray();
    expect(archived.length).toBeLessThanOrEqual(40);
    const ids = new Set(sent.map((task) => task.taskId));
    expect(archived.every((doc) => ids.has(String(doc._id)))).toBe(true);
    // Room again: new changes are archived.
    const [after] = await sendAndRun(client, 1);
    await waitFor('a new task to be archived', async () => {
      return (await tasks.findOne({ _id: after.taskId as never }))?.status === 'success';
    });
  });
});
