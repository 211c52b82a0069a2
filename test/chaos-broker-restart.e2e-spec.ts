import type { INestApplicationContext } from '@nestjs/common';
import { setTimeout as delay } from 'node:timers/promises';
import {
  CogmanClient,
  TaskHandler,
  TaskPublishError,
  type CogmanTaskHandler,
  type TaskContext,
} from '@cogman/nestjs';
import { startApp } from './support/app';
import { ChaosServices, type IsolatedRabbitMQ } from './support/chaos';
import { uniqueNamespace } from './support/services';
import { deferred, waitFor, within } from './support/wait';

/** Runs of each task id, in this process (producer and worker are one app). */
const runs = new Map<string, number>();

@TaskHandler('chaos-count')
class CountHandler implements CogmanTaskHandler<{ n: number }> {
  async handle(_payload: { n: number }, ctx: TaskContext) {
    runs.set(ctx.task.taskId, (runs.get(ctx.task.taskId) ?? 0) + 1);
    // A little work, so that some tasks are running when the broker goes away.
    await delay(2);
  }
}

interface Sent {
  n: number;
  /** When the send began and settled, in ms from the start. */
  at: number;
  settledAt?: number;
  taskId?: string;
  error?: string;
}

const TOTAL = 2000;
/** Sends in flight at most. */
const WINDOW = 50;
/** The stream's pace: task n is sent no earlier than n × this after the start (200 a second). */
const PACE_MS = 5;
/** The broker's app is stopped once this many sends have begun, and started again at once. */
const RESTART_AT = 600;
/** From this task on, sends wait until the broker's app is down, so some go out during it... */
const DURING_OUTAGE = 1400;
/** ...and from this one on, until it is back, so that the stream outlasts the restart. */
const AFTER_RESTART = 1800;

describe('Chaos: RabbitMQ restarts (stop_app/start_app) while tasks stream in', () => {
  const chaos = new ChaosServices();
  let app: INestApplicationContext | undefined;

  afterAll(async () => {
    try {
      if (app) await within('the application to close', app.close(), 60_000);
    } finally {
      await chaos.stopAll();
    }
  });

  // The report it prints says what happened to each send; a send in flight when the broker
  // closed the connection is rejected (TaskPublishError: channel closed) although the broker may
  // already have it, and then it runs: the documented at-least-once contract of sendTask.
  it('loses no confirmed task and runs none twice when the broker restarts mid-stream', async () => {
    const broker: IsolatedRabbitMQ = await chaos.rabbitmq();
    const redis = await chaos.redis();
    app = await startApp(
      { namespace: uniqueNamespace('chaos-restart'), amqpUri: broker.uri, redisUri: redis.uri },
      [CountHandler],
    );
    const client = app.get(CogmanClient);
    const began = Date.now();
    const timeline: string[] = [];
    const mark = (event: string) => timeline.push(`${Date.now() - began} ms ${event}`);

    const sent: Sent[] = [];
    let next = 0;
    const down = deferred<number>();
    const back = deferred<number>();
    // Awaited below; a failed restart must not also surface as an unhandled rejection.
    down.promise.catch(() => {});
    back.promise.catch(() => {});
    const sender = async () => {
      while (next < TOTAL) {
        const n = next++;
        if (n === RESTART_AT) void restartBroker();
        if (n >= DURING_OUTAGE) await down.promise;
        if (n >= AFTER_RESTART) await back.promise;
        const due = began + n * PACE_MS;
        if (due > Date.now()) await delay(due - Date.now());
        const record: Sent = { n, at: Date.now() - began };
        sent.push(record);
        try {
          record.taskId = (await client.sendTask({ name: 'chaos-count', payload: { n } })).taskId;
        } catch (error) {
          record.error = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
          if (error instanceof TaskPublishError) record.taskId = error.taskId;
        }
        record.settledAt = Date.now() - began;
      }
    };
    const restartBroker = async () => {
      try {
        mark(`stop_app (after ${RESTART_AT} sends began)`);
        await broker.stopApp();
        mark('broker app stopped');
        down.resolve(Date.now() - began);
        await broker.startApp();
        mark('broker app started');
        back.resolve(Date.now() - began);
      } catch (error) {
        down.reject(error);
        back.reject(error);
      }
    };
    await Promise.all(Array.from({ length: WINDOW }, sender));
    mark('all sends settled');
    const outage = { from: await down.promise, to: await back.promise };

    // Sends in flight while the broker's app was down: without them this tests nothing.
    const duringOutage = sent.filter((s) => s.at <= outage.to && s.settledAt! >= outage.from);
    const confirmed = sent.filter((s) => !s.error);
    const rejected = sent.filter((s) => s.error);
    let settled = true;
    try {
      await waitFor(
        'every confirmed task to run',
        () => confirmed.every((s) => runs.has(s.taskId!)),
        { timeout: 60_000, interval: 100 },
      );
    } catch {
      settled = false;
    }
    mark(settled ? 'every confirmed task ran' : 'gave up waiting after 60 s');

    const lost = confirmed.filter((s) => !runs.has(s.taskId!));
    const duplicated = [...runs.values()].filter((count) => count > 1).length;
    const ranDespiteRejection = rejected.filter((s) => s.taskId && runs.has(s.taskId)).length;
    const errors = new Map<string, number>();
    for (const { error } of rejected) {
      const kind = error!.replace(/[0-9a-f]{8}-[0-9a-f-]{27}|\d+/g, '#');
      errors.set(kind, (errors.get(kind) ?? 0) + 1);
    }
    const statuses = async (of: Sent[]) => {
      const counts = new Map<string, number>();
      for (const s of of.slice(0, 200)) {
        const status = s.taskId ? ((await client.getTask(s.taskId))?.status ?? 'no record') : '?';
        counts.set(status, (counts.get(status) ?? 0) + 1);
      }
      return [...counts].map(([status, count]) => `${status}: ${count}`).join(', ') || '-';
    };
    const queues = await broker.ctl(
      'list_queues',
      '-q',
      'name',
      'messages_ready',
      'messages_unacknowledged',
      'consumers',
    );
    const services = client.services();
    console.log(
      [
        `Broker restart while ${TOTAL} tasks were sent (200/s, up to ${WINDOW} in flight, restart at ${RESTART_AT}):`,
        `  sent ${sent.length} (${duringOutage.length} in flight while the broker app was down, ${duringOutage.filter((s) => !s.error).length} of them confirmed), confirmed ${confirmed.length}, rejected ${rejected.length}`,
        `  ran ${runs.size} distinct tasks (${[...runs.values()].reduce((a, b) => a + b, 0)} runs), ` +
          `${duplicated} more than once, ${ranDespiteRejection} of them rejected at send`,
        `  confirmed but never ran: ${lost.length} (records: ${await statuses(lost)})`,
        `  rejections: ${[...errors].map(([k, v]) => `${v} × ${k}`).join('; ') || '-'} (records: ${await statuses(rejected)})`,
        `  first/last rejection at: ${rejected[0]?.at ?? '-'} / ${rejected.at(-1)?.at ?? '-'} ms`,
        `  timeline: ${timeline.join('; ')}`,
        `  connections afterwards: publisher ${services.broker.publisherConnected}, ` +
          `consumer ${String(services.broker.consumerConnected)}, worker running ${String(services.worker?.running)}, ` +
          `active ${String(services.worker?.activeTasks)}`,
        `  queues (name ready unacked consumers):\n${queues.replace(/^/gm, '    ')}`,
      ].join('\n'),
    );

    expect(duringOutage.length).toBeGreaterThan(0);
    expect(lost).toEqual([]);
    expect(duplicated).toBe(0);
    expect([...errors.keys()].every((kind) => kind.startsWith('TaskPublishError'))).toBe(true);
  });
});
