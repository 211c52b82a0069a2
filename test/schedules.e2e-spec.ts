import type { Redis } from 'ioredis';
import {
  CogmanClient,
  ScheduleNotFoundError,
  TaskHandler,
  TaskInvalidError,
  type CogmanTaskHandler,
  type TaskContext,
} from '@cogman/nestjs';
import { testHarness } from './support/harness';
import { call, startHttpApp } from './support/http';
import {
  startProducerProcess,
  stopProducerProcess,
  type ProducerProcess,
} from './support/producer-process';
import { openRedis } from './support/services';
import { waitFor } from './support/wait';
import { ScheduleStore } from '../libs/cogman/src/store/schedule.store';
import { tickTaskId } from '../libs/cogman/src/task';

/** Runs of each task, by id. */
const runs = new Map<string, number>();

@TaskHandler('tick')
class TickHandler implements CogmanTaskHandler {
  handle(_payload: unknown, ctx: TaskContext) {
    runs.set(ctx.task.taskId, (runs.get(ctx.task.taskId) ?? 0) + 1);
  }
}

@TaskHandler('report', { schedule: { cron: '0 6 * * 1-5', timezone: 'Europe/Berlin' } })
class ReportHandler implements CogmanTaskHandler {
  handle() {}
}

/** The ticks (ms) a schedule has sent tasks for, from the task records in Redis, with their ids. */
async function sentTicks(redis: Redis, namespace: string, scheduleId: string) {
  const found = new Map<number, string>();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(
      cursor,
      'MATCH',
      `cogman:{${namespace}}:task:*`,
      'COUNT',
      1000,
    );
    cursor = next;
    for (const key of keys) {
      const task = await redis.hget(key, 'task');
      const primaryKey = task
        ? (JSON.parse(task) as { primaryKey?: string }).primaryKey
        : undefined;
      if (!primaryKey?.startsWith(`${scheduleId}@`)) continue;
      found.set(new Date(primaryKey.slice(scheduleId.length + 1)).getTime(), key.split(':').pop()!);
    }
  } while (cursor !== '0');
  return found;
}

describe('Recurring tasks', () => {
  let redis: Redis;
  const harness = testHarness();
  const producers: ProducerProcess[] = [];

  beforeAll(() => {
    redis = openRedis();
  });

  afterEach(async () => {
    await Promise.all(producers.splice(0).map((p) => stopProducerProcess(p, 'SIGKILL')));
    await harness.afterEach();
  });

  afterAll(async () => {
    redis.disconnect();
    await harness.afterAll();
  });

  it('sends exactly one task per tick with two scheduler processes: ten ticks, ten tasks, each run once', async () => {
    runs.clear();
    const namespace = harness.namespace('sched-two');
    const schedules = JSON.stringify([{ id: 'every-second', name: 'tick', cron: '* * * * * *' }]);
    const env = { COGMAN_NAMESPACE: namespace, COGMAN_SCHEDULES: schedules };
    producers.push(await startProducerProcess(env), await startProducerProcess(env));
    // The worker here runs no scheduler: only the two processes send.
    await harness.app({ namespace, startScheduler: false }, [TickHandler]);
    const from = Math.ceil(Date.now() / 1000) * 1000 + 1000;
    const to = from + 9000;
    await waitFor(
      'ten ticks to be sent and run',
      async () => {
        const sent = await sentTicks(redis, namespace, 'every-second');
        const window = [...sent].filter(([tick]) => tick >= from && tick <= to);
        return window.length === 10 && window.every(([, id]) => runs.get(id) === 1);
      },
      { timeout: 30_000 },
    );
    const sent = await sentTicks(redis, namespace, 'every-second');
    const window = [...sent.keys()].filter((tick) => tick >= from && tick <= to).sort();
    expect(window).toEqual(Array.from({ length: 10 }, (_, i) => from + i * 1000));
    // Every task that ran is the task of one tick, and ran once.
    expect([...runs.values()].every((count) => count === 1)).toBe(true);
    expect(new Set(sent.values()).size).toBe(sent.size);
  });

  it('claims a tick for one scheduler at a time; a claim whose scheduler died lapses and the tick is sent', async () => {
    const namespace = harness.namespace('sched-claim');
    const quiet = { namespace, startScheduler: false, startWorker: false };
    const [a, b] = await Promise.all([harness.app(quiet), harness.app(quiet)]);
    const client = a.get(CogmanClient);
    const created = await client.upsertSchedule({ id: 'c', name: 'tick', every: 1000 });
    const tick = created.nextRunAt!.getTime();
    await waitFor('the tick to be due', () => Date.now() > tick + 50);
    const stores = [a.get(ScheduleStore), b.get(ScheduleStore)];
    // Twenty claims at once from two processes' stores: one gets the tick.
    const claims = await Promise.all(
      Array.from({ length: 20 }, (_, i) => stores[i % 2].claim(Date.now(), 10, 1000, `dead-${i}`)),
    );
    expect(claims.flat()).toEqual([{ id: 'c', definition: expect.any(Object), tick }]);
    // Its claimer "dies" without sending: a scheduler that starts claims the tick once the lease
    // lapses, and sends its task under the tick's id.
    await harness.app({ namespace, startWorker: false });
    const taskId = tickTaskId('c', tick);
    await waitFor(
      'the tick to be sent',
      async () => (await client.getTask(taskId))?.status === 'queued',
    );
    expect((await client.getSchedule('c'))?.lastRunAt?.getTime()).toBeGreaterThanOrEqual(tick);
  });

  it('after a time with no scheduler, sends one task for all missed ticks (once) or none (skip)', async () => {
    const namespace = harness.namespace('sched-missed');
    const admin = (await harness.app({ namespace, startScheduler: false, startWorker: false })).get(
      CogmanClient,
    );
    const upserted = Date.now();
    await admin.upsertSchedule({ id: 'once', name: 'tick', every: 1000 });
    await admin.upsertSchedule({ id: 'skip', name: 'tick', every: 1000, missed: 'skip' });
    // No scheduler runs for 12 s: the ticks of that time are missed.
    await waitFor('12 s to pass', () => Date.now() > upserted + 12_000, { timeout: 20_000 });
    const restart = Date.now();
    await harness.app({ namespace, startWorker: false });
    await waitFor('both schedules to send again', async () => {
      const [once, skip] = await Promise.all(['once', 'skip'].map((id) => admin.getSchedule(id)));
      return [once, skip].every((s) => (s?.lastRunAt?.getTime() ?? 0) > restart);
    });
    // Ticks 6 s or more before the restart were certainly found more than 5 s late.
    const missedUntil = restart - 6000;
    const onceTicks = [...(await sentTicks(redis, namespace, 'once')).keys()];
    const skipTicks = [...(await sentTicks(redis, namespace, 'skip')).keys()];
    const firstTick = Math.floor(upserted / 1000) * 1000 + 1000;
    expect(onceTicks.filter((tick) => tick <= missedUntil)).toEqual([firstTick]);
    expect(skipTicks.filter((tick) => tick <= missedUntil)).toEqual([]);
    // Ticks after the restart are sent, each.
    expect(skipTicks.some((tick) => tick > restart)).toBe(true);
  });

  it('reconciles schedules declared in code at boot; run-time ones stay', async () => {
    const namespace = harness.namespace('sched-boot');
    const first = await harness.app(
      {
        namespace,
        startWorker: false,
        schedules: [
          { id: 'hourly', name: 'tick', cron: '0 * * * *' },
          { id: 'gone', name: 'tick', every: 60_000 },
        ],
      },
      [ReportHandler],
    );
    const client = first.get(CogmanClient);
    await client.upsertSchedule({ id: 'manual', name: 'tick', every: 3_600_000 });
    const listed = await client.listSchedules();
    expect(listed.map((s) => [s.id, s.source])).toEqual([
      ['gone', 'code'],
      ['hourly', 'code'],
      ['manual', 'api'],
      ['report', 'code'],
    ]);
    const report = listed.find((s) => s.id === 'report')!;
    expect(report).toMatchObject({
      name: 'report',
      cron: '0 6 * * 1-5',
      timezone: 'Europe/Berlin',
    });
    expect([4, 5]).toContain(report.nextRunAt!.getUTCHours());
    await first.close();

    // The next deploy changes one schedule, drops another and no longer has the handler's.
    const second = await harness.app({
      namespace,
      schedules: [{ id: 'hourly', name: 'tick', cron: '30 * * * *', priority: 'high' }],
    });
    const after = await second.get(CogmanClient).listSchedules();
    expect(after.map((s) => s.id)).toEqual(['hourly', 'manual']);
    expect(after[0]).toMatchObject({ cron: '30 * * * *', priority: 'high', source: 'code' });
    expect(after[0].nextRunAt!.getUTCMinutes()).toBe(30);
  });

  it('is operated at run time: upsert, pause, resume, trigger, remove', async () => {
    runs.clear();
    const namespace = harness.namespace('sched-api');
    const client = (await harness.app({ namespace }, [TickHandler])).get(CogmanClient);
    await expect(
      client.upsertSchedule({ id: 'bad', name: 'tick', cron: 'soon' }),
    ).rejects.toBeInstanceOf(TaskInvalidError);
    const created = await client.upsertSchedule({
      id: 'pulse',
      name: 'tick',
      every: 1000,
      payload: { from: 'pulse' },
      retry: 2,
    });
    expect(created).toMatchObject({ id: 'pulse', paused: false, source: 'api', lastTask: null });
    const ran = await waitFor('a tick to run', async () => {
      const schedule = await client.getSchedule('pulse');
      return schedule?.lastTask?.status === 'success' && schedule;
    });
    const task = await client.getTask(ran.lastTask!.taskId);
    expect(task).toMatchObject({
      name: 'tick',
      payload: { from: 'pulse' },
      retry: 2,
      primaryKey: `pulse@${ran.lastRunAt!.toISOString()}`,
    });

    const paused = await client.pauseSchedule('pulse');
    expect(paused).toMatchObject({ paused: true, nextRunAt: null });
    expect(await redis.zscore(`cogman:{${namespace}}:schedules:due`, 'pulse')).toBeNull();
    const triggered = await client.triggerSchedule('pulse');
    expect(triggered).toMatchObject({ name: 'tick', payload: { from: 'pulse' } });
    expect(triggered.primaryKey).toMatch(/^pulse@/);
    await waitFor('the triggered task to run', () => runs.get(triggered.taskId) === 1);

    const resumed = await client.resumeSchedule('pulse');
    expect(resumed.paused).toBe(false);
    expect(resumed.nextRunAt!.getTime()).toBeGreaterThan(Date.now() - 1000);
    await waitFor('ticks to run again', async () => {
      return (
        ((await client.getSchedule('pulse'))?.lastRunAt?.getTime() ?? 0) >
        resumed.nextRunAt!.getTime() - 1
      );
    });
    await client.removeSchedule('pulse');
    expect(await client.getSchedule('pulse')).toBeNull();
    await expect(client.removeSchedule('pulse')).rejects.toBeInstanceOf(ScheduleNotFoundError);
  });

  it('is operated over REST', async () => {
    const namespace = harness.namespace('sched-rest');
    const { app, api } = await startHttpApp({ namespace, startWorker: false });
    try {
      const put = await call(`${api}/schedules/nightly`, {
        method: 'PUT',
        body: { name: 'tick', cron: '0 3 * * *', timezone: 'America/New_York' },
      });
      expect(put.status).toBe(200);
      expect(put.body).toMatchObject({
        id: 'nightly',
        cron: '0 3 * * *',
        paused: false,
        source: 'api',
      });
      expect(typeof put.body.nextRunAt).toBe('string');
      const list = await call(`${api}/schedules`);
      expect(list.body.schedules.map((s: { id: string }) => s.id)).toEqual(['nightly']);
      expect((await call(`${api}/schedules/nightly/pause`, { method: 'POST' })).body.paused).toBe(
        true,
      );
      expect((await call(`${api}/schedules/nightly/resume`, { method: 'POST' })).body.paused).toBe(
        false,
      );
      const triggered = await call(`${api}/schedules/nightly/trigger`, { method: 'POST' });
      expect(triggered.status).toBe(200);
      expect(triggered.body).toMatchObject({ name: 'tick', status: 'queued' });
      const bad = await call(`${api}/schedules/nightly`, {
        method: 'PUT',
        body: { name: 'tick', every: 10 },
      });
      expect(bad.status).toBe(400);
      const unknown = await call(`${api}/schedules/nightly`, {
        method: 'PUT',
        body: { name: 'tick', every: 1000, id: 'other' },
      });
      expect(unknown.status).toBe(400);
      expect((await call(`${api}/schedules/nightly`, { method: 'DELETE' })).status).toBe(204);
      expect((await call(`${api}/schedules/nightly`)).status).toBe(404);
      expect((await call(`${api}/schedules/nightly/pause`, { method: 'POST' })).status).toBe(404);
    } finally {
      await app.close();
    }
  });
});
