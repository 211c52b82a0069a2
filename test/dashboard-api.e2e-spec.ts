import type { ChannelModel, ConfirmChannel, GetMessage } from 'amqplib';
import { READS_BEFORE_RENEWAL } from '../libs/cogman/src/broker/dead-letter.queue';
import { gunzipSync } from 'node:zlib';
import { request as httpRequest } from 'node:http';
import {
  CogmanClient,
  CogmanWorker,
  DEAD_LETTER_HEADERS,
  TaskHandler,
  type CogmanTaskHandler,
} from '@cogman/nestjs';
import { call, startHttpApp, type HttpApp } from './support/http';
import { dropDatabase, mongoUri } from './support/mongo';
import { cleanUp, openAmqp, queueNames, uniqueNamespace } from './support/services';
import { waitFor } from './support/wait';

/**
 * The dashboard's serving (page, assets, caching, access rules) and the REST endpoints it uses:
 * overview and its event stream, workers, dead letters, bulk actions, the error filter. Against
 * the real RabbitMQ, Redis and MongoDB archive (FerretDB).
 */

@TaskHandler('dash-ok')
class OkHandler implements CogmanTaskHandler {
  handle() {}
}

@TaskHandler('dash-fail', { retry: 0 })
class FailHandler implements CogmanTaskHandler<{ code: string }> {
  handle(payload: { code: string }) {
    throw new Error(`boom ${payload.code}`);
  }
}

const API_KEY = 'dashboard-api-spec-key-0123456789';

describe('Dashboard: serving and its REST endpoints', () => {
  const namespace = uniqueNamespace('dash-api');
  const database = namespace.replace(/[^A-Za-z0-9_]/g, '_');
  const queues = queueNames(namespace);
  let app: HttpApp;
  let client: CogmanClient;
  let amqp: ChannelModel;
  let channel: ConfirmChannel;

  beforeAll(async () => {
    app = await startHttpApp(
      {
        namespace,
        mongoUri: mongoUri(database),
        highPriorityConcurrency: 3,
        unknownTaskGracePeriod: 0,
      },
      { providers: [OkHandler, FailHandler], extras: { startDashboard: true } },
    );
    client = app.app.get(CogmanClient);
    amqp = await openAmqp();
    channel = await amqp.createConfirmChannel();
    await waitFor('the archive to connect', () => client.services().mongo?.connected);
  });

  afterAll(async () => {
    await amqp?.close();
    await app?.app.close();
    await cleanUp(namespace);
    await dropDatabase(database);
  });

  describe('the page', () => {
    it('redirects to the path with a slash, relative to where it was asked for', async () => {
      const answer = await fetch(`${app.api}/dashboard`, { redirect: 'manual' });
      expect(answer.status).toBe(308);
      expect(answer.headers.get('location')).toBe('dashboard/');
    });

    it('serves the page uncached, under a strict CSP, with relative URLs and its settings', async () => {
      const page = await call(`${app.api}/dashboard/`);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      expect(page.headers.get('cache-control')).toBe('no-store');
      expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
      expect(page.text).toContain('<meta name="cogman-dashboard"');
      expect(page.text).toContain('&quot;readOnly&quot;:false');
      expect(page.text).not.toMatch(/<script(?![^>]*\ssrc=)/); // no inline script
      const sources = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
      expect(sources.length).toBeGreaterThan(1);
      for (const source of sources) expect(source).toMatch(/^(\.\/|data:)/);
    });

    it('serves hashed assets immutably, gzipped when asked, and nothing else', async () => {
      const page = await call(`${app.api}/dashboard/`);
      const script = /src="\.\/(assets\/[^"]+\.js)"/.exec(page.text)![1];
      const plain = await fetch(`${app.api}/dashboard/${script}`, {
        headers: { 'accept-encoding': 'identity' },
      });
      expect(plain.status).toBe(200);
      expect(plain.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      expect(plain.headers.get('content-type')).toMatch(/^text\/javascript/);
      const body = Buffer.from(await plain.arrayBuffer());
      const zipped = await rawGet(`${app.api}/dashboard/${script}`, { 'accept-encoding': 'gzip' });
      expect(zipped.headers['content-encoding']).toBe('gzip');
      expect(gunzipSync(zipped.body).equals(body)).toBe(true);
      for (const missing of [
        'assets/nope.js',
        'assets/..%2Fpackage.json',
        'assets/a%2Fb.js',
        'assets',
      ]) {
        expect((await call(`${app.api}/dashboard/${missing}`)).status).toBe(404);
      }
    });

    it('is not in the OpenAPI document, while the endpoints it uses are', async () => {
      const { SwaggerModule, DocumentBuilder } = await import('@nestjs/swagger');
      const document = SwaggerModule.createDocument(app.app, new DocumentBuilder().build());
      const paths = Object.keys(document.paths);
      expect(paths.some((path) => path.includes('dashboard'))).toBe(false);
      for (const path of [
        '/cogman/overview',
        '/cogman/overview/stream',
        '/cogman/workers',
        '/cogman/dead-letters',
        '/cogman/dead-letters/redrive',
        '/cogman/dead-letters/discard',
        '/cogman/tasks/bulk',
      ]) {
        expect(paths).toContain(path);
      }
      const list = document.paths['/cogman/tasks'].get!.parameters as { name: string }[];
      expect(list.map((p) => p.name)).toContain('error');
    });
  });

  describe('overview and workers', () => {
    it('lists the worker process with its host, pid, concurrency and running tasks', async () => {
      const workers = await waitFor('the worker to report', async () => {
        const answer = await call(`${app.api}/workers`);
        return answer.status === 200 && answer.body.workers.length === 1 ? answer.body : null;
      });
      expect(workers.reportInterval).toBe(2000);
      expect(workers.workers[0]).toMatchObject({
        pid: process.pid,
        highPriorityConcurrency: 3,
        lowPriorityConcurrency: expect.any(Number),
        activeTasks: 0,
        held: { [queues.high[0]]: 0, [queues.low[0]]: 0 },
      });
      expect(Date.now() - Date.parse(workers.workers[0].reportedAt)).toBeLessThan(15_000);
    });

    it('gives one snapshot of queues, workers, dead letters and connections', async () => {
      const overview = await call(`${app.api}/overview`);
      expect(overview.status).toBe(200);
      expect(overview.body).toMatchObject({
        archive: true,
        services: { broker: true, redis: true, mongo: true },
        offlineTasks: 0,
        interval: 2000,
      });
      expect(overview.body.queues.map((q: { name: string }) => q.name)).toEqual([
        queues.high[0],
        queues.low[0],
        queues.deadLetter,
      ]);
      expect(overview.body.warnings).not.toContainEqual(
        expect.objectContaining({ code: 'NO_HIGH_PRIORITY_CONSUMER' }),
      );
    });

    it('tells in the snapshot which priority is paused, as a warning instead of "no consumer"', async () => {
      expect((await call(`${app.api}/queues/low/pause`, { method: 'POST', body: {} })).status).toBe(
        200,
      );
      try {
        const overview = await waitFor('the snapshot to show the pause', async () => {
          const answer = await call(`${app.api}/overview`);
          return answer.body.pauses?.low.paused ? answer.body : null;
        });
        expect(overview.pauses).toEqual({
          high: { paused: false, since: null },
          low: { paused: true, since: expect.any(String) },
        });
        const codes = overview.warnings.map((w: { code: string }) => w.code);
        expect(codes).toContain('LOW_PRIORITY_PAUSED');
        expect(codes).not.toContain('NO_LOW_PRIORITY_CONSUMER');
      } finally {
        await call(`${app.api}/queues/low/resume`, { method: 'POST', body: {} });
      }
      await waitFor('the snapshot to show the resume', async () => {
        const answer = await call(`${app.api}/overview`);
        return answer.body.pauses?.low.paused === false;
      });
    });

    it('streams the snapshot as server-sent events, one shared snapshot for every stream', async () => {
      const events = await Promise.all([readEvents(app.api, 2), readEvents(app.api, 2)]);
      for (const stream of events) {
        expect(stream).toHaveLength(2);
        for (const event of stream) {
          expect(event.event).toBe('overview');
          expect(event.data.queues).toHaveLength(3);
        }
      }
      // The two streams got the same snapshots (computed once per interval, shared).
      const times = events.map((stream) => stream.map((event) => event.data.at));
      expect(times[0].some((at) => times[1].includes(at))).toBe(true);
    });
  });

  describe('tasks: the error filter and bulk actions', () => {
    it('finds failed tasks by the text of their error, as text (not a pattern)', async () => {
      const ids = [];
      for (const code of ['A1', 'B2', 'A1.x']) {
        ids.push((await client.sendTask({ name: 'dash-fail', payload: { code } })).taskId);
      }
      await waitFor('the failures to be archived', async () => {
        const page = await call(`${app.api}/tasks?name=dash-fail&status=failed`);
        return page.body.total === 3;
      });
      const a1 = await call(
        `${app.api}/tasks?name=dash-fail&error=${encodeURIComponent('BOOM a1')}`,
      );
      expect(a1.status).toBe(200);
      expect(a1.body.total).toBe(2);
      const dot = await call(`${app.api}/tasks?name=dash-fail&error=${encodeURIComponent('a1.')}`);
      expect(dot.body.items.map((t: { taskId: string }) => t.taskId)).toEqual([ids[2]]);
      const bad = await call(`${app.api}/tasks?error=`);
      expect(bad.status).toBe(400);
    });

    it('retries every task matching a filter, in batches, and counts what it did', async () => {
      const before = await call(`${app.api}/tasks?name=dash-fail&status=failed`);
      expect(before.body.total).toBe(3);
      const answer = await call(`${app.api}/tasks/bulk`, {
        method: 'POST',
        body: { action: 'retry', filter: { name: 'dash-fail', status: ['failed'], error: 'a1' } },
      });
      expect(answer.status).toBe(200);
      expect(answer.body).toMatchObject({ matched: 2, done: 2, conflicts: 0, failed: 0 });
      await waitFor('the second attempts to fail too', async () => {
        const page = await call(`${app.api}/tasks?name=dash-fail&status=failed`);
        return page.body.items.filter((t: { attempt: number }) => t.attempt === 2).length === 2;
      });
      // A second bulk retry of the same filter: the old failed attempts have been retried already.
      const again = await call(`${app.api}/tasks/bulk`, {
        method: 'POST',
        body: {
          action: 'retry',
          filter: { name: 'dash-fail', error: 'a1', status: ['failed'] },
          max: 3,
        },
      });
      expect(again.body.matched).toBe(3);
      expect(again.body.truncated).toBe(true);
    });

    it('cancels tasks given by id, counting those already finished as conflicts', async () => {
      const later = await client.sendTask({ name: 'dash-ok', delay: 3_600_000 });
      const done = await client.sendTask({ name: 'dash-ok' });
      await waitFor(
        'the second to finish',
        async () => (await client.getTask(done.taskId))?.status === 'success',
      );
      const answer = await call(`${app.api}/tasks/bulk`, {
        method: 'POST',
        body: { action: 'cancel', taskIds: [later.taskId, done.taskId, 'no-such-task'] },
      });
      expect(answer.body).toMatchObject({ matched: 3, done: 1, conflicts: 1, failed: 1 });
      expect(answer.body.errors).toEqual([{ taskId: 'no-such-task', message: 'no such task' }]);
      expect((await client.getTask(later.taskId))?.status).toBe('cancelled');
    });

    it('cancels every scheduled task matching a filter, and none other', async () => {
      const later = [];
      for (let i = 0; i < 3; i++) {
        later.push(
          await client.sendTask({ name: 'dash-ok', delay: 3_600_000, primaryKey: 'bulk-cancel' }),
        );
      }
      const other = await client.sendTask({
        name: 'dash-ok',
        delay: 3_600_000,
        primaryKey: 'keep-me',
      });
      await waitFor('the scheduled tasks to be archived', async () => {
        const page = await call(`${app.api}/tasks?status=scheduled&primaryKey=bulk-cancel`);
        return page.body.total === 3;
      });
      const answer = await call(`${app.api}/tasks/bulk`, {
        method: 'POST',
        body: { action: 'cancel', filter: { status: ['scheduled'], primaryKey: 'bulk-cancel' } },
      });
      expect(answer.body).toMatchObject({ matched: 3, done: 3, conflicts: 0, truncated: false });
      for (const task of later)
        expect((await client.getTask(task.taskId))?.status).toBe('cancelled');
      expect((await client.getTask(other.taskId))?.status).toBe('scheduled');
    });

    it.each([
      [{ action: 'retry' }, 'taskIds'],
      [{ action: 'retry', taskIds: ['a'], filter: {} }, 'taskIds'],
      [{ action: 'explode', taskIds: ['a'] }, 'action'],
      [{ action: 'retry', taskIds: ['../x'] }, 'taskIds'],
      [{ action: 'retry', filter: { status: ['nope'] } }, 'filter.status'],
      [{ action: 'retry', filter: { name: { $ne: 1 } } }, 'filter.name'],
      [{ action: 'retry', filter: { from: 'yesterday' } }, 'filter.from'],
      [{ action: 'retry', filter: {}, max: 100_001 }, 'max'],
      [{ action: 'retry', taskIds: ['a'], extra: 1 }, 'extra'],
    ])('refuses a bad bulk request %j (400, naming %s)', async (body, field) => {
      const answer = await call(`${app.api}/tasks/bulk`, { method: 'POST', body });
      expect(answer.status).toBe(400);
      expect(answer.body.details.map((d: { field: string }) => d.field)).toContain(field);
    });

    it('takes only JSON bodies', async () => {
      const answer = await call(`${app.api}/tasks/bulk`, {
        method: 'POST',
        rawBody: 'action=retry',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      expect(answer.status).toBe(415);
    });
  });

  describe('dead letters', () => {
    async function publishDeadLetter(headers: Record<string, unknown>, body: unknown) {
      channel.publish('', queues.deadLetter, Buffer.from(JSON.stringify(body)), {
        persistent: true,
        contentType: 'application/json',
        messageId: headers.TaskID as string | undefined,
        headers,
      });
      await channel.waitForConfirms();
    }

    it('lists dead letters with their reason, task and queue, leaving them in the queue', async () => {
      const task = await client.sendTask({ name: 'dash-nobody', payload: { n: 1 } });
      const list = await waitFor('the task to be dead-lettered', async () => {
        const answer = await call(`${app.api}/dead-letters`);
        return answer.body.items?.length === 1 ? answer.body : null;
      });
      expect(list.total).toBe(1);
      expect(list.items[0]).toMatchObject({
        taskId: task.taskId,
        taskName: 'dash-nobody',
        reason: 'unknown_task',
        queue: queues.low[0],
        payloadEncoding: 'json',
        payload: { n: 1 },
        key: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/),
      });
      expect(list.items[0].headers[DEAD_LETTER_HEADERS.reason]).toBeUndefined();
      const again = await call(`${app.api}/dead-letters`);
      expect(again.body.items.map((i: { key: string }) => i.key)).toEqual([list.items[0].key]);
    });

    it('redrives a dead-lettered task as a new attempt, which runs once a handler exists', async () => {
      const [letter] = (await call(`${app.api}/dead-letters`)).body.items;
      let ran = 0;
      app.app.get(CogmanWorker).register('dash-nobody', { handle: () => void ran++ });
      const answer = await call(`${app.api}/dead-letters/redrive`, {
        method: 'POST',
        body: { keys: [letter.key] },
      });
      expect(answer.status).toBe(200);
      expect(answer.body).toMatchObject({
        handled: 1,
        retried: 1,
        requeued: 0,
        kept: 0,
        remaining: 0,
      });
      await waitFor('the new attempt to succeed', async () => {
        const attempts = await client.getAttempts(letter.taskId);
        return attempts.length === 2 && attempts[1].status === 'success';
      });
      expect(ran).toBe(1);
    });

    it('sends a message without a record back to its queue as it was', async () => {
      await publishDeadLetter(
        {
          TaskName: 'dash-ok',
          TaskID: 'dash-raw-1',
          [DEAD_LETTER_HEADERS.reason]: 'missing_task_name',
          [DEAD_LETTER_HEADERS.queue]: queues.low[0],
          [DEAD_LETTER_HEADERS.at]: new Date().toISOString(),
        },
        {},
      );
      const answer = await call(`${app.api}/dead-letters/redrive`, {
        method: 'POST',
        body: { all: true },
      });
      expect(answer.body).toMatchObject({ handled: 1, retried: 0, requeued: 1, remaining: 0 });
      await waitFor(
        'the message to run',
        async () => (await client.getTask('dash-raw-1'))?.status === 'success',
      );
    });

    it('discards selected dead letters and keeps the others; keeps what has no queue to go back to', async () => {
      for (const id of ['dash-d1', 'dash-d2']) {
        await publishDeadLetter(
          {
            TaskID: id,
            [DEAD_LETTER_HEADERS.reason]: 'missing_task_name',
            [DEAD_LETTER_HEADERS.queue]: 'not-a-cogman-queue',
            [DEAD_LETTER_HEADERS.at]: new Date().toISOString(),
          },
          { id },
        );
      }
      const { items } = (await call(`${app.api}/dead-letters`)).body;
      expect(items.map((i: { taskId: string }) => i.taskId)).toEqual(['dash-d1', 'dash-d2']);
      const redrive = await call(`${app.api}/dead-letters/redrive`, {
        method: 'POST',
        body: { all: true },
      });
      expect(redrive.body).toMatchObject({ handled: 0, kept: 2, remaining: 2 });
      const discard = await call(`${app.api}/dead-letters/discard`, {
        method: 'POST',
        body: { keys: [items[0].key] },
      });
      expect(discard.body).toMatchObject({ handled: 1, remaining: 1 });
      const left = (await call(`${app.api}/dead-letters`)).body.items;
      expect(left.map((i: { taskId: string }) => i.taskId)).toEqual(['dash-d2']);
      const rest = await call(`${app.api}/dead-letters/discard`, {
        method: 'POST',
        body: { all: true },
      });
      expect(rest.body).toMatchObject({ handled: 1, remaining: 0 });
    });

    it.each([
      [{}, 'keys'],
      [{ keys: ['short'] }, 'keys'],
      [{ keys: [], all: true }, 'keys'],
      [{ all: 'yes' }, 'all'],
      [{ all: true, limit: 501 }, 'limit'],
      [{ all: true, other: 1 }, 'other'],
    ])('refuses a bad selection %j (400, naming %s)', async (body, field) => {
      const answer = await call(`${app.api}/dead-letters/discard`, { method: 'POST', body });
      expect(answer.status).toBe(400);
      expect(answer.body.details.map((d: { field: string }) => d.field)).toContain(field);
    });

    it('refuses a listing limit out of range', async () => {
      expect((await call(`${app.api}/dead-letters?limit=0`)).status).toBe(400);
      expect((await call(`${app.api}/dead-letters?limit=501`)).status).toBe(400);
      expect((await call(`${app.api}/dead-letters?limit=1&x=1`)).status).toBe(400);
    });
  });

  describe('access', () => {
    it('refuses an unsafe request a page of another site sends, whatever the configuration', async () => {
      const answer = await call(`${app.api}/tasks/bulk`, {
        method: 'POST',
        body: { action: 'retry', taskIds: ['a'] },
        headers: { 'sec-fetch-site': 'cross-site' },
      });
      expect(answer.status).toBe(403);
    });
  });
});

describe('Dashboard: reading a quorum dead-letter queue', () => {
  const namespace = uniqueNamespace('dash-api-qq');
  const queues = queueNames(namespace);

  afterAll(() => cleanUp(namespace));

  it('never uses up the deliveries of a message by reading it again and again', async () => {
    const app = await startHttpApp(
      { namespace, queueType: 'quorum', unknownTaskGracePeriod: 0 },
      // A worker with a handler (one without any consumes nothing), but not this task's.
      { providers: [OkHandler], extras: { startDashboard: true } },
    );
    const amqp = await openAmqp();
    try {
      const task = await app.app.get(CogmanClient).sendTask({ name: 'dash-qq-nobody' });
      await waitFor('the task to be dead-lettered', async () => {
        const answer = await call(`${app.api}/dead-letters`);
        return answer.body.items?.length === 1;
      });
      // Each read gives the message back, which a quorum queue counts as a delivery.
      for (let i = 0; i < 3 * READS_BEFORE_RENEWAL; i++) {
        const answer = await call(`${app.api}/dead-letters`);
        expect(answer.body.items.map((item: { taskId: string }) => item.taskId)).toEqual([
          task.taskId,
        ]);
      }
      const channel = await amqp.createChannel();
      const message = await channel.get(queues.deadLetter, { noAck: false });
      expect(message).not.toBe(false);
      const count = (message as GetMessage).properties.headers?.['x-delivery-count'] as
        number | undefined;
      expect(count ?? 0).toBeLessThanOrEqual(READS_BEFORE_RENEWAL);
      await channel.close();
    } finally {
      await amqp.close();
      await app.app.close();
    }
  });
});

describe('Dashboard: read-only, API key, global prefix', () => {
  const namespace = uniqueNamespace('dash-api-ro');

  afterAll(() => cleanUp(namespace));

  it('refuses the actions of a read-only dashboard, and says so in the page', async () => {
    const app = await startHttpApp(
      { namespace, startWorker: false },
      { extras: { startDashboard: true, dashboard: { readOnly: true } } },
    );
    try {
      const page = await call(`${app.api}/dashboard/`);
      expect(page.text).toContain('&quot;readOnly&quot;:true');
      const task = await call(`${app.api}/tasks`, {
        method: 'POST',
        body: { name: 'x' },
        headers: { 'x-cogman-dashboard': '1' },
      });
      expect(task.status).toBe(403);
      expect(task.body.code).toBe('COGMAN_DASHBOARD_READ_ONLY');
      expect(
        (await call(`${app.api}/overview`, { headers: { 'x-cogman-dashboard': '1' } })).status,
      ).toBe(200);
    } finally {
      await app.app.close();
    }
  });

  it('serves the page without the key, and nothing else', async () => {
    const app = await startHttpApp(
      { namespace, startWorker: false, restApiKey: API_KEY },
      { extras: { startDashboard: true } },
    );
    try {
      const page = await call(`${app.api}/dashboard/`);
      expect(page.status).toBe(200);
      expect(page.text).toContain('&quot;apiKey&quot;:true');
      expect((await call(`${app.api}/overview`)).status).toBe(401);
      expect(
        (await call(`${app.api}/overview`, { headers: { 'x-api-key': API_KEY } })).status,
      ).toBe(200);
    } finally {
      await app.app.close();
    }
  });

  it('is served under the application’s global prefix and a REST prefix of its own', async () => {
    const app = await startHttpApp(
      { namespace, startWorker: false },
      { extras: { startDashboard: true }, globalPrefix: 'api/v1', rest: { prefix: 'ops/tasks' } },
    );
    try {
      expect(app.api).toMatch(/\/api\/v1\/ops\/tasks$/);
      const page = await call(`${app.api}/dashboard/`);
      expect(page.status).toBe(200);
      const script = /src="\.\/(assets\/[^"]+\.js)"/.exec(page.text)![1];
      expect((await fetch(`${app.api}/dashboard/${script}`)).status).toBe(200);
    } finally {
      await app.app.close();
    }
  });

  it('turns the REST API on by itself, and needs nothing else', async () => {
    const app = await startHttpApp(
      { namespace, startWorker: false },
      { extras: { startDashboard: true, startRestServer: false } },
    );
    try {
      expect((await call(`${app.api}/ping`)).status).toBe(200);
      expect((await call(`${app.api}/dashboard/`)).status).toBe(200);
    } finally {
      await app.app.close();
    }
  });
});

/** An event of the overview stream. */
interface StreamEvent {
  event: string;
  data: { at: string; queues: unknown[] };
}

/** The first `count` events of the overview stream. */
async function readEvents(api: string, count: number): Promise<StreamEvent[]> {
  const controller = new AbortController();
  const response = await fetch(`${api}/overview/stream`, {
    signal: AbortSignal.any([controller.signal, AbortSignal.timeout(20_000)]),
  });
  expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  const events: StreamEvent[] = [];
  let buffer = '';
  try {
    while (events.length < count) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0 && events.length < count) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const lines = block.split('\n');
        const event =
          lines
            .find((l) => l.startsWith('event:'))
            ?.slice(6)
            .trim() ?? 'message';
        const data = lines
          .filter((l) => l.startsWith('data:'))
          .map((l) => l.slice(5).trim())
          .join('\n');
        if (data) events.push({ event, data: JSON.parse(data) as StreamEvent['data'] });
      }
    }
  } finally {
    controller.abort();
  }
  return events;
}

/** A GET with headers fetch would rewrite (it always asks for gzip and unzips). */
function rawGet(
  url: string,
  headers: Record<string, string>,
): Promise<{ headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}
