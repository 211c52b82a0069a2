import { CogmanClient } from '@cogman/nestjs';
import { ChaosServices } from './support/chaos';
import { testHarness } from './support/harness';
import { dropDatabase, mongoUri, openMongo } from './support/mongo';
import { uniqueNamespace } from './support/services';
import { waitFor } from './support/wait';

describe('Recurring schedules with the MongoDB archive', () => {
  const chaos = new ChaosServices();
  const harness = testHarness();
  const database = uniqueNamespace('schedules').replace(/-/g, '_');

  afterEach(() => harness.afterEach());

  afterAll(async () => {
    await harness.afterAll();
    await chaos.stopAll();
    await dropDatabase(database);
  });

  it('keeps a copy of the schedules in MongoDB and restores them when Redis loses its data', async () => {
    const namespace = harness.namespace('sched-archive');
    // No persistence: a restart comes back empty.
    const redis = await chaos.redis({ persistence: 'none' });
    const app = await harness.app({
      namespace,
      redisUri: redis.uri,
      mongoUri: mongoUri(database),
      startWorker: false,
      schedules: [{ id: 'declared', name: 'tick', every: 3_600_000 }],
    });
    const client = app.get(CogmanClient);
    await waitFor('the archive to connect', () => client.services().mongo?.connected);
    await client.upsertSchedule({ id: 'api', name: 'tick', cron: '0 4 * * *', payload: { n: 1 } });
    await client.upsertSchedule({ id: 'held', name: 'tick', every: 60_000 });
    await client.pauseSchedule('held');
    await client.upsertSchedule({ id: 'dropped', name: 'tick', every: 60_000 });
    await client.removeSchedule('dropped');
    const mongo = await openMongo();
    try {
      const copies = await mongo.db(database).collection('schedules').find({}).toArray();
      expect(copies.map((copy) => copy._id as unknown as string).sort()).toEqual([
        'api',
        'declared',
        'held',
      ]);
    } finally {
      await mongo.close();
    }

    await redis.restart();
    await waitFor('the schedules to be restored', async () => {
      const ids = (await client.listSchedules()).map((schedule) => schedule.id);
      return ids.join() === 'api,declared,held';
    });
    const [api, declared, held] = await client.listSchedules();
    expect(api).toMatchObject({
      cron: '0 4 * * *',
      payload: { n: 1 },
      source: 'api',
      paused: false,
    });
    expect(api.nextRunAt!.getUTCHours()).toBe(4);
    expect(declared).toMatchObject({ every: 3_600_000, source: 'code' });
    expect(held).toMatchObject({ paused: true, nextRunAt: null });
  });
});
