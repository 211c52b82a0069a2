import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { get } from 'node:http';
import {
  CogmanClient,
  TaskHandler,
  TaskStatusConflictError,
  type CogmanTaskHandler,
  type TaskContext,
} from '@cogman/nestjs';
import { TcpProxy } from './support/chaos';
import { call, startHttpApp, type HttpApp } from './support/http';
import { AMQP_URI, REDIS_URI, cleanUp, queueNames, uniqueNamespace } from './support/services';
import { deferred, waitFor } from './support/wait';

/** Ids of tasks whose next run of `flaky` should fail. */
const failNext = new Set<string>();
const held = new Map<string, () => void>();

@TaskHandler('note')
class NoteHandler implements CogmanTaskHandler {
  handle() {}
}

@TaskHandler('flaky')
class FlakyHandler implements CogmanTaskHandler<{ key: string }> {
  handle(payload: { key: string }) {
    if (failNext.delete(payload.key)) throw new Error(`flaky ${payload.key} failed`);
  }
}

/** Runs until the spec releases it (or its signal aborts). */
@TaskHandler('hold')
class HoldHandler implements CogmanTaskHandler {
  async handle(_payload: unknown, ctx: TaskContext) {
    const release = deferred();
    held.set(ctx.task.taskId, release.resolve);
    ctx.signal.addEventListener('abort', () => release.resolve(), { once: true });
    await release.promise;
  }
}

const ERROR_SHAPE = {
  statusCode: expect.any(Number),
  error: expect.any(String),
  code: expect.any(String),
  message: expect.any(String),
};

describe('REST API', () => {
  const namespaces: string[] = [];
  const apps: HttpApp[] = [];
  let main: HttpApp;
  let api: string;

  const namespace = (label: string) => {
    const name = uniqueNamespace(label);
    namespaces.push(name);
    return name;
  };
  const start = async (...args: Parameters<typeof startHttpApp>) => {
    const app = await startHttpApp(...args);
    apps.push(app);
    return app;
  };
  const statusOf = async (taskId: string) =>
    (await call(`${api}/tasks/${taskId}`)).body?.task?.status as string | undefined;
  const becomes = (taskId: string, status: string) =>
    waitFor(`${taskId} to be ${status}`, async () => (await statusOf(taskId)) === status);

  beforeAll(async () => {
    main = await start(
      { namespace: namespace('rest'), metrics: true },
      { providers: [NoteHandler, FlakyHandler, HoldHandler] },
    );
    api = main.api;
  });

  afterAll(async () => {
    for (const release of held.values()) release();
    for (const app of apps.splice(0)) await app.app.close();
    for (const ns of namespaces) await cleanUp(ns);
  });

  it('answers ping and health', async () => {
    const ping = await call(`${api}/ping`);
    expect(ping.status).toBe(200);
    expect(ping.body).toEqual({ status: 'ok', time: expect.any(String) });
    const health = await call(`${api}/health`);
    expect(health.status).toBe(200);
    expect(health.body).toEqual({ status: 'up', broker: 'up', redis: 'up', consumers: 'up' });
  });

  describe('tasks', () => {
    it('sends a task by POST, then gets it with its attempts', async () => {
      const sent = await call(`${api}/tasks`, {
        method: 'POST',
        body: {
          name: 'note',
          payload: { to: 'a@b.c', nested: { list: [1, 2] } },
          priority: 'high',
          primaryKey: 'user-42',
          headers: { traceparent: '00-abc-def-01' },
        },
      });
      expect(sent.status).toBe(201);
      expect(sent.body).toMatchObject({
        name: 'note',
        status: 'queued',
        attempt: 1,
        priority: 'high',
        primaryKey: 'user-42',
        payloadEncoding: 'json',
        payload: { to: 'a@b.c', nested: { list: [1, 2] } },
      });
      await becomes(sent.body.taskId, 'success');
      const got = await call(`${api}/tasks/${sent.body.taskId}`);
      expect(got.status).toBe(200);
      expect(got.body.task).toMatchObject({
        taskId: sent.body.taskId,
        status: 'success',
        headers: { traceparent: '00-abc-def-01' },
        duration: expect.any(Number),
      });
      expect(Date.parse(got.body.task.createdAt)).not.toBeNaN();
      expect(got.body.attempts).toEqual([got.body.task]);
    });

    it('answers 404 for an unknown task and 400 for a malformed id', async () => {
      const unknown = await call(`${api}/tasks/0b6f2d1c-3c9e-4f6e-9a43-8c0f1d2e3a4b`);
      expect(unknown.status).toBe(404);
      expect(unknown.body).toEqual({
        ...ERROR_SHAPE,
        statusCode: 404,
        error: 'Not Found',
        code: 'COGMAN_TASK_NOT_FOUND',
      });
      const malformed = await call(`${api}/tasks/${encodeURIComponent('x y')}`);
      expect(malformed.status).toBe(400);
      expect(malformed.body).toMatchObject({ code: 'COGMAN_REQUEST_INVALID' });
    });

    it('answers 400 with the field for a task the library refuses', async () => {
      const refused = await call(`${api}/tasks`, {
        method: 'POST',
        body: { name: 'note', headers: { TaskID: 'forged' } },
      });
      expect(refused.status).toBe(400);
      expect(refused.body).toMatchObject({
        code: 'COGMAN_TASK_INVALID',
        details: [{ field: 'headers', problems: [expect.stringContaining('reserved')] }],
      });
    });

    it('schedules a task, runs it now, and refuses a second run-now with 409', async () => {
      const sent = await call(`${api}/tasks`, {
        method: 'POST',
        body: { name: 'note', delay: 3_600_000 },
      });
      expect(sent.body.status).toBe('scheduled');
      const now = await call(`${api}/tasks/${sent.body.taskId}/run-now`, { method: 'POST' });
      expect(now.status).toBe(200);
      expect(now.body).toMatchObject({ taskId: sent.body.taskId });
      await becomes(sent.body.taskId, 'success');
      const again = await call(`${api}/tasks/${sent.body.taskId}/run-now`, { method: 'POST' });
      expect(again.status).toBe(409);
      expect(again.body).toMatchObject({ code: 'COGMAN_TASK_STATUS_CONFLICT' });
    });

    it('takes runAt as an ISO date', async () => {
      const runAt = new Date(Date.now() + 3_600_000).toISOString();
      const sent = await call(`${api}/tasks`, { method: 'POST', body: { name: 'note', runAt } });
      expect(sent.status).toBe(201);
      expect(sent.body).toMatchObject({ status: 'scheduled', runAt });
      expect(
        (await call(`${api}/tasks/${sent.body.taskId}/cancel`, { method: 'POST' })).status,
      ).toBe(200);
    });

    it('cancels a scheduled task, and refuses to cancel it twice with 409', async () => {
      const sent = await call(`${api}/tasks`, {
        method: 'POST',
        body: { name: 'note', delay: 3_600_000 },
      });
      const cancelled = await call(`${api}/tasks/${sent.body.taskId}/cancel`, { method: 'POST' });
      expect(cancelled.status).toBe(200);
      expect(cancelled.body).toMatchObject({ taskId: sent.body.taskId, status: 'cancelled' });
      const again = await call(`${api}/tasks/${sent.body.taskId}/cancel`, { method: 'POST' });
      expect(again.status).toBe(409);
      const runNow = await call(`${api}/tasks/${sent.body.taskId}/run-now`, { method: 'POST' });
      expect(runNow.status).toBe(409);
    });

    it('cancels a running task: its handler is aborted', async () => {
      const sent = await call(`${api}/tasks`, { method: 'POST', body: { name: 'hold' } });
      await becomes(sent.body.taskId, 'in_progress');
      const cancelled = await call(`${api}/tasks/${sent.body.taskId}/cancel`, { method: 'POST' });
      expect(cancelled.status).toBe(200);
      expect(cancelled.body.status).toBe('cancelled');
      await waitFor(
        'the handler to let go',
        () => !main.app.get(CogmanClient).services().worker?.activeTasks,
      );
    });

    it.each(['cancel', 'run-now', 'retry'])(
      'answers 404 to %s of an unknown task',
      async (action) => {
        const answer = await call(`${api}/tasks/no-such-task/${action}`, { method: 'POST' });
        expect(answer.status).toBe(404);
        expect(answer.body.code).toBe('COGMAN_TASK_NOT_FOUND');
      },
    );
  });

  describe('retry', () => {
    it('retries a failed task: a new attempt that runs, listed among the attempts', async () => {
      const key = 'retry-http';
      failNext.add(key);
      const sent = await call(`${api}/tasks`, {
        method: 'POST',
        body: { name: 'flaky', payload: { key } },
      });
      await becomes(sent.body.taskId, 'failed');
      const retried = await call(`${api}/tasks/${sent.body.taskId}/retry`, { method: 'POST' });
      expect(retried.status).toBe(200);
      expect(retried.body).toMatchObject({
        originalTaskId: sent.body.taskId,
        attempt: 2,
        retry: 1,
        payload: { key },
      });
      await becomes(retried.body.taskId, 'success');
      const detail = await call(`${api}/tasks/${sent.body.taskId}`);
      expect(detail.body.attempts.map((a: { status: string }) => a.status)).toEqual([
        'failed',
        'success',
      ]);
      // The task's current attempt succeeded: nothing to retry.
      const again = await call(`${api}/tasks/${sent.body.taskId}/retry`, { method: 'POST' });
      expect(again.status).toBe(409);
      expect(again.body).toMatchObject({
        code: 'COGMAN_TASK_STATUS_CONFLICT',
        message: expect.stringContaining('only a failed task can be retried'),
      });
    });

    it('refuses with 409 a task that has not failed', async () => {
      const sent = await call(`${api}/tasks`, { method: 'POST', body: { name: 'note' } });
      await becomes(sent.body.taskId, 'success');
      const refused = await call(`${api}/tasks/${sent.body.taskId}/retry`, { method: 'POST' });
      expect(refused.status).toBe(409);
    });

    it('retries through CogmanClient.retryTask as well, once per failure', async () => {
      const client = main.app.get(CogmanClient);
      const key = 'retry-client';
      failNext.add(key);
      const task = await client.sendTask({ name: 'flaky', payload: { key } });
      await becomes(task.taskId, 'failed');
      const [first, second] = await Promise.allSettled([
        client.retryTask(task.taskId),
        client.retryTask(task.taskId),
      ]);
      const results = [first, second];
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const refused = results.find((r) => r.status === 'rejected');
      expect((refused as PromiseRejectedResult).reason).toBeInstanceOf(TaskStatusConflictError);
      const chain = await waitFor('the retry to succeed', async () => {
        const attempts = await client.getAttempts(task.taskId);
        return attempts.at(-1)?.status === 'success' && attempts;
      });
      expect(chain.map((a) => a.attempt)).toEqual([1, 2]);
    });
  });

  it('answers listing and counts with 501 without the MongoDB archive, saying what is needed', async () => {
    for (const path of ['/tasks', '/tasks?status=failed&limit=10', '/counts']) {
      const answer = await call(`${api}${path}`);
      expect(answer.status).toBe(501);
      expect(answer.body).toEqual({
        ...ERROR_SHAPE,
        statusCode: 501,
        code: 'COGMAN_ARCHIVE_NOT_CONFIGURED',
        message: expect.stringContaining('mongoUri'),
      });
    }
  });

  describe('queues', () => {
    it('shows ready messages and consumers of every queue, the dead-letter queue included', async () => {
      const ns = namespace('rest-ready');
      const producer = await start({ namespace: ns, startWorker: false });
      for (let i = 0; i < 3; i++) {
        await call(`${producer.api}/tasks`, { method: 'POST', body: { name: 'nobody' } });
      }
      const names = queueNames(ns);
      const queues = await call(`${producer.api}/queues`);
      expect(queues.status).toBe(200);
      expect(queues.body).toEqual({
        queues: [
          { name: names.high[0], kind: 'high', ready: 0, unacked: 0, consumers: 0 },
          { name: names.low[0], kind: 'low', ready: 3, unacked: 0, consumers: 0 },
          { name: names.deadLetter, kind: 'dead-letter', ready: 0, unacked: 0, consumers: 0 },
        ],
        workers: 0,
        tasks: [],
        reportInterval: expect.any(Number),
        paused: [],
      });
    });

    it('shows the messages workers hold unacknowledged, as they report them', async () => {
      const sent = await Promise.all(
        [0, 1].map(() =>
          call(`${api}/tasks`, { method: 'POST', body: { name: 'hold', priority: 'high' } }),
        ),
      );
      const high = (body: { queues: { kind: string; unacked: number; consumers: number }[] }) =>
        body.queues.find((q) => q.kind === 'high')!;
      const seen = await waitFor('the worker to report 2 unacked messages', async () => {
        const { body } = await call(`${api}/queues`);
        return high(body).unacked === 2 && body;
      });
      expect(seen.workers).toBe(1);
      expect(high(seen).consumers).toBe(1);
      for (const { body } of sent) {
        await waitFor('the handler to start', () => held.has(body.taskId));
        held.get(body.taskId)!();
      }
      await waitFor('the worker to report none', async () => {
        const { body } = await call(`${api}/queues`);
        return high(body).unacked === 0;
      });
    });
  });

  it('serves Prometheus metrics', async () => {
    const sent = await call(`${api}/tasks`, { method: 'POST', body: { name: 'note' } });
    await becomes(sent.body.taskId, 'success');
    const metrics = await call(`${api}/metrics`);
    expect(metrics.status).toBe(200);
    // The Prometheus text format (Express may reorder the parameters).
    expect(metrics.headers.get('content-type')?.split(/; */).sort()).toEqual([
      'charset=utf-8',
      'text/plain',
      'version=0.0.4',
    ]);
    expect(metrics.text).toMatch(/^cogman_tasks_sent_total\{name="note",priority="low"\} [1-9]/m);
    expect(metrics.text).toMatch(
      /^cogman_tasks_processed_total\{name="note",priority="low",status="success"\} [1-9]/m,
    );
    expect(metrics.text).toMatch(
      /^cogman_tasks_retried_total\{name="flaky",priority="low"\} [1-9]/m,
    );
    expect(metrics.text).toMatch(
      /^cogman_task_duration_seconds_count\{name="note",priority="low"\} [1-9]/m,
    );
    expect(metrics.text).toMatch(/^cogman_publish_duration_seconds_count\{priority="low"\} [1-9]/m);
    expect(metrics.text).toMatch(
      /^cogman_queue_messages\{queue="[^"]+high_priority_queue_0",state="ready"\} \d+/m,
    );
    expect(metrics.text).toMatch(/^cogman_queue_consumers\{queue="[^"]+low_priority_queue_0"\} 1/m);
    expect(metrics.text).toMatch(/^cogman_offline_buffer_tasks 0/m);
  });

  it('answers 404 on /metrics when metrics are off, saying how to turn them on', async () => {
    const off = await start({ namespace: namespace('rest-nometrics') });
    const answer = await call(`${off.api}/metrics`);
    expect(answer.status).toBe(404);
    expect(answer.body).toMatchObject({
      code: 'COGMAN_METRICS_OFF',
      message: expect.stringContaining('metrics: true'),
    });
  });

  describe('access without a key or guard', () => {
    it('answers loopback clients (every test above), on any loopback address', async () => {
      const other = await start({ namespace: namespace('rest-127-2') }, { host: '127.0.0.2' });
      expect((await call(`${other.api}/ping`)).status).toBe(200);
    });

    it('refuses what a web page of another site makes a local browser send', async () => {
      const refused = await call(`${api}/tasks`, {
        method: 'POST',
        body: { name: 'note' },
        headers: { origin: 'https://evil.example' },
      });
      expect(refused.status).toBe(403);
      expect(refused.body).toMatchObject({ code: 'COGMAN_REST_FORBIDDEN' });
      // A DNS name rebound to 127.0.0.1: the page is same-origin, but its Host is not local.
      // (fetch cannot set Host, node:http can.)
      const url = new URL(`${api}/ping`);
      const rebound = await new Promise<number>((resolve, reject) => {
        get(
          {
            host: url.hostname,
            port: url.port,
            path: url.pathname,
            headers: { host: 'evil.example' },
          },
          (response) => {
            response.resume();
            resolve(response.statusCode ?? 0);
          },
        ).on('error', reject);
      });
      expect(rebound).toBe(403);
    });

    it('refuses a request a proxy forwarded, with 403 and how to open access', async () => {
      const refused = await call(`${api}/ping`, { headers: { 'x-forwarded-for': '203.0.113.9' } });
      expect(refused.status).toBe(403);
      expect(refused.body).toEqual({
        ...ERROR_SHAPE,
        statusCode: 403,
        code: 'COGMAN_REST_FORBIDDEN',
        message: expect.stringContaining('restApiKey'),
      });
    });
  });

  it('answers 404 (not 500) for a path the API does not have', async () => {
    const answer = await call(`${api}/nothing-here`);
    expect(answer.status).toBe(404);
  });

  describe('when a backend is down', () => {
    let broker: TcpProxy;
    let redis: TcpProxy;
    let app: HttpApp;

    beforeAll(async () => {
      broker = await TcpProxy.start({ port: Number(new URL(AMQP_URI).port || 5672) });
      redis = await TcpProxy.start({ port: Number(new URL(REDIS_URI).port || 6379) });
      app = await startHttpApp({
        namespace: namespace('rest-down'),
        amqpUri: broker.uriFor(AMQP_URI),
        redisUri: redis.uriFor(REDIS_URI),
        requestTimeout: 1000,
        startWorker: false,
      });
    });

    afterAll(async () => {
      broker.restore();
      redis.restore();
      await app.app.close();
      await broker.close();
      await redis.close();
    });

    it('answers 503 for queues and health while the broker is unreachable, and 200 once it is back', async () => {
      broker.cut({ mode: 'reset' });
      await waitFor(
        'the app to notice',
        async () => (await call(`${app.api}/queues`)).status === 503,
      );
      const queues = await call(`${app.api}/queues`);
      expect(queues.body).toMatchObject({ ...ERROR_SHAPE, code: 'COGMAN_BROKER_UNAVAILABLE' });
      const health = await call(`${app.api}/health`);
      expect(health.status).toBe(503);
      expect(health.body).toMatchObject({
        code: 'COGMAN_UNHEALTHY',
        details: { status: 'down', broker: 'down', redis: 'up' },
      });
      broker.restore();
      await waitFor(
        'the broker to be back',
        async () => (await call(`${app.api}/queues`)).status === 200,
      );
    });

    it('answers 503 for a task while Redis does not answer', async () => {
      redis.cut({ mode: 'blackhole' });
      try {
        const answer = await call(`${app.api}/tasks/0b6f2d1c-3c9e-4f6e-9a43-8c0f1d2e3a4b`);
        expect(answer.status).toBe(503);
        expect(answer.body).toMatchObject({ ...ERROR_SHAPE, code: 'COGMAN_STORE_UNAVAILABLE' });
      } finally {
        redis.restore();
      }
      await waitFor(
        'Redis to answer again',
        async () =>
          (await call(`${app.api}/tasks/0b6f2d1c-3c9e-4f6e-9a43-8c0f1d2e3a4b`)).status === 404,
      );
    });
  });

  it('describes every endpoint in OpenAPI', () => {
    const document = SwaggerModule.createDocument(
      main.app,
      new DocumentBuilder()
        .setTitle('Cogman')
        .addApiKey({ type: 'apiKey', in: 'header', name: 'x-api-key' }, 'cogman-api-key')
        .addBearerAuth(undefined, 'cogman-bearer')
        .build(),
    );
    const operations = Object.entries(document.paths).flatMap(([path, item]) =>
      Object.entries(item).map(([method, operation]) => ({
        route: `${method.toUpperCase()} ${path}`,
        operation: operation as { summary?: string; responses: Record<string, unknown> },
      })),
    );
    expect(operations.map((o) => o.route).sort()).toEqual(
      [
        'DELETE /cogman/schedules/{id}',
        'GET /cogman/counts',
        'GET /cogman/dead-letters',
        'GET /cogman/health',
        'GET /cogman/limits',
        'GET /cogman/metrics',
        'GET /cogman/overview',
        'GET /cogman/overview/stream',
        'GET /cogman/ping',
        'GET /cogman/queues',
        'GET /cogman/queues/pauses',
        'GET /cogman/schedules',
        'GET /cogman/schedules/{id}',
        'GET /cogman/tasks',
        'GET /cogman/tasks/{id}',
        'GET /cogman/workers',
        'POST /cogman/dead-letters/discard',
        'POST /cogman/dead-letters/redrive',
        'POST /cogman/queues/pause',
        'POST /cogman/queues/resume',
        'POST /cogman/queues/{priority}/pause',
        'POST /cogman/queues/{priority}/resume',
        'POST /cogman/schedules/{id}/pause',
        'POST /cogman/schedules/{id}/resume',
        'POST /cogman/schedules/{id}/trigger',
        'POST /cogman/tasks',
        'POST /cogman/tasks/bulk',
        'POST /cogman/tasks/{id}/cancel',
        'POST /cogman/tasks/{id}/retry',
        'POST /cogman/tasks/{id}/run-now',
        'PUT /cogman/schedules/{id}',
      ].sort(),
    );
    for (const { route, operation } of operations) {
      expect({ route, summary: operation.summary }).toEqual({ route, summary: expect.any(String) });
      expect(Object.keys(operation.responses)).toEqual(expect.arrayContaining(['401', '403']));
    }
    const schemas = document.components?.schemas ?? {};
    expect(Object.keys(schemas)).toEqual(
      expect.arrayContaining([
        'TaskRecordDto',
        'TaskListDto',
        'TaskCountsDto',
        'QueuesDto',
        'RestErrorDto',
        'SendTaskBody',
      ]),
    );
  });
});
