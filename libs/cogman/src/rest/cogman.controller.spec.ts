import { BadRequestException } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TASK_BROKER } from '../broker/task-broker';
import { CogmanClient } from '../client/cogman.client';
import { OfflineTaskBuffer } from '../dispatch/offline-task.buffer';
import { TaskDispatcher } from '../dispatch/task.dispatcher';
import { CogmanHealthIndicator } from '../inspector/cogman-health.indicator';
import { CogmanInspector } from '../inspector/cogman.inspector';
import { resolveCogmanOptions, RESOLVED_OPTIONS } from '../config';
import { ArchiveNotConfiguredError, CogmanError } from '../errors';
import { CogmanMetrics } from '../metrics/cogman.metrics';
import { TaskScheduler } from '../scheduler/task.scheduler';
import { TASK_ARCHIVE } from '../store/task-archive';
import { TaskLog } from '../store/task-log';
import { TASK_LOG_STORE } from '../store/task-log.store';
import type { TaskRecord } from '../task';
import { InMemoryTaskArchive } from '../testing/in-memory-task-archive';
import { InMemoryTaskLogStore } from '../testing/in-memory-task-log.store';
import { TaskCancellation } from '../worker/task-cancellation';
import { CogmanController } from './cogman.controller';
import { restErrorOf } from './rest-exception.filter';
import { REST_APP_GUARDS } from './rest.constants';

const T0 = Date.parse('2026-03-01T00:00:00Z');

function record(i: number, fields: Partial<TaskRecord> = {}): TaskRecord {
  const taskId = `task-${String(i).padStart(3, '0')}`;
  return {
    taskId,
    name: i % 2 ? 'email' : 'report',
    originalTaskId: taskId,
    primaryKey: `user-${i % 3}`,
    retry: 0,
    attempt: 1,
    priority: i % 4 === 0 ? 'high' : 'low',
    headers: {},
    createdAt: new Date(T0 + Math.floor(i / 2) * 60_000), // two tasks per minute: ties by id
    payload: { i },
    status: i % 5 === 0 ? 'failed' : 'success',
    failError: null,
    duration: 1,
    startedAt: null,
    runAt: null,
    updatedAt: new Date(T0 + i * 60_000),
    ...fields,
  };
}

async function controllerWith(archive: InMemoryTaskArchive | null) {
  const moduleRef = await Test.createTestingModule({
    controllers: [CogmanController],
    providers: [
      CogmanClient,
      TaskDispatcher,
      OfflineTaskBuffer,
      TaskScheduler,
      TaskLog,
      CogmanMetrics,
      { provide: TASK_LOG_STORE, useValue: new InMemoryTaskLogStore() },
      { provide: TASK_ARCHIVE, useValue: archive },
      {
        provide: RESOLVED_OPTIONS,
        useValue: resolveCogmanOptions({ amqpUri: 'amqp://x', redisUri: 'redis://x' }),
      },
      {
        provide: TASK_BROKER,
        useValue: { connected: true, onReconnect: () => {}, publish: () => Promise.resolve() },
      },
      { provide: TaskCancellation, useValue: {} },
      { provide: CogmanInspector, useValue: {} },
      { provide: CogmanHealthIndicator, useValue: {} },
      { provide: REST_APP_GUARDS, useValue: [] },
    ],
  }).compile();
  return moduleRef.get(CogmanController);
}

describe('CogmanController with an archive', () => {
  let archive: InMemoryTaskArchive;
  let controller: CogmanController;

  beforeEach(async () => {
    archive = new InMemoryTaskArchive();
    archive.seed(...Array.from({ length: 30 }, (_, i) => record(i)));
    controller = await controllerWith(archive);
  });

  it('lists newest first by default, with the total, a page at a time', async () => {
    const first = await controller.list({ limit: 4 });
    expect(first.total).toBe(30);
    expect(first.limit).toBe(4);
    expect(first.items.map((t) => t.taskId)).toEqual([
      'task-029',
      'task-028',
      'task-027',
      'task-026',
    ]);
    // Following the cursors visits every task once, in order.
    const seen = first.items.map((t) => t.taskId);
    let cursor = first.nextCursor;
    while (cursor) {
      const page = await controller.list({ limit: 4, cursor });
      seen.push(...page.items.map((t) => t.taskId));
      cursor = page.nextCursor;
    }
    expect(seen).toEqual(Array.from({ length: 30 }, (_, i) => record(29 - i).taskId));
  });

  it('defaults to a page of 50 and passes every filter to the archive as plain values', async () => {
    const page = await controller.list({
      status: ['failed'],
      name: 'report',
      priority: 'high',
      primaryKey: 'user-0',
      order: 'asc',
      from: '2026-03-01T00:00:00Z',
      to: '2026-03-01T00:14:00Z',
    });
    expect(page.limit).toBe(50);
    // Failed (every 5th), report (even), high (every 4th), user-0 (every 3rd), in the first 15 min.
    expect(page.items.map((t) => t.taskId)).toEqual(['task-000']);
    expect(page.total).toBe(1);
    expect(archive.queries[0]).toEqual({
      status: ['failed'],
      name: 'report',
      priority: 'high',
      primaryKey: 'user-0',
      originalTaskId: undefined,
      from: new Date('2026-03-01T00:00:00Z'),
      to: new Date('2026-03-01T00:14:00Z'),
      order: 'asc',
      limit: 50,
      cursor: undefined,
    });
  });

  it('shows dates in ISO 8601 and a Buffer payload in base64', async () => {
    archive.seed(record(99, { payload: Buffer.from([0, 1, 255]) }));
    const { items } = await controller.list({ name: 'email', limit: 1 });
    expect(items[0]).toMatchObject({
      taskId: 'task-099',
      payloadEncoding: 'base64',
      payload: 'AAH/',
      createdAt: new Date(T0 + 49 * 60_000).toISOString(),
    });
  });

  it('refuses a range whose start is after its end', async () => {
    await expect(
      controller.list({ from: '2026-03-02T00:00:00Z', to: '2026-03-01T00:00:00Z' }),
    ).rejects.toThrow(BadRequestException);
  });

  it('counts per status in equal buckets', async () => {
    const counts = await controller.counts({
      from: '2026-03-01T00:00:00Z',
      to: '2026-03-01T00:15:00Z',
      buckets: 3,
    });
    expect(counts.buckets.map((b) => [b.from, b.total, b.counts.failed, b.counts.success])).toEqual(
      [
        ['2026-03-01T00:00:00.000Z', 10, 2, 8],
        ['2026-03-01T00:05:00.000Z', 10, 2, 8],
        ['2026-03-01T00:10:00.000Z', 10, 2, 8],
      ],
    );
  });

  it('counts the last day in 24 buckets by default', async () => {
    const before = Date.now();
    const counts = await controller.counts({});
    expect(counts.buckets).toHaveLength(24);
    const to = Date.parse(counts.to);
    expect(to).toBeGreaterThanOrEqual(before);
    expect(to - Date.parse(counts.from)).toBe(24 * 60 * 60 * 1000);
  });

  it.each([
    [{ from: '2026-03-01T01:00:00Z', to: '2026-03-01T00:00:00Z' }, 'from'],
    [{ from: '2026-03-01T00:00:00Z', to: '2026-03-01T00:00:00Z' }, 'from'],
    [{ from: '2026-03-01T00:00:00.000Z', to: '2026-03-01T00:00:00.005Z', buckets: 6 }, 'buckets'],
  ])('refuses a count over %j (%s)', async (query, field) => {
    const refusal = controller.counts(query);
    await expect(refusal).rejects.toThrow(BadRequestException);
    const body = restErrorOf(await refusal.catch((error: unknown) => error));
    expect(body.details).toEqual([expect.objectContaining({ field })]);
  });

  it('answers 503 when the archive is unreachable', async () => {
    class ArchiveDown extends CogmanError {
      readonly code = 'COGMAN_ARCHIVE_UNAVAILABLE';
    }
    archive.failWith = new ArchiveDown('The MongoDB archive is unavailable: down');
    const error = await controller.list({}).catch((e: unknown) => e);
    expect(restErrorOf(error)).toMatchObject({
      statusCode: 503,
      code: 'COGMAN_ARCHIVE_UNAVAILABLE',
    });
  });
});

describe('CogmanController without an archive', () => {
  it('answers listing and counts with ArchiveNotConfiguredError (501)', async () => {
    const controller = await controllerWith(null);
    for (const call of [() => controller.list({}), () => controller.counts({})]) {
      const error = await call().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ArchiveNotConfiguredError);
      expect(restErrorOf(error)).toMatchObject({
        statusCode: 501,
        code: 'COGMAN_ARCHIVE_NOT_CONFIGURED',
        message: expect.stringContaining('mongoUri'),
      });
    }
  });
});
