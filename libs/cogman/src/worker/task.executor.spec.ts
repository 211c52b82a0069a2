import { Test } from '@nestjs/testing';
import type { ConsumeMessage } from 'amqplib';
import { TASK_BROKER } from '../broker/task-broker';
import { RESOLVED_OPTIONS, resolveCogmanOptions } from '../config';
import type { TaskHandlerOptions } from '../decorators/task-handler.decorator';
import { TaskDispatcher } from '../dispatch/task.dispatcher';
import { TaskTimeoutError, TaskUnrecoverableError, WorkerShutdownError } from '../errors';
import { COGMAN_REDIS } from '../store/redis-connection';
import { TaskLog } from '../store/task-log';
import { TASK_LOG_STORE } from '../store/task-log.store';
import { buildTask, retryTaskId, toMessage, type TaskContext, type TaskEnvelope } from '../task';
import { InMemoryTaskLogStore } from '../testing/in-memory-task-log.store';
import { AttemptProgress } from './attempt-progress';
import { TaskAbort } from './task-abort';
import { TaskCancellation } from './task-cancellation';
import { TaskHandlerRegistry } from './task-handler.registry';
import { TaskExecutor, UNHANDLED_HEADERS, type Delivery } from './task.executor';
import { WorkerDirectory, type WorkerReport } from './worker-directory';

/** The store of the current test, where `delivery` records each task as its producer would. */
let producerLog: InMemoryTaskLogStore['record'] | undefined;

const PROGRESS_AFTER = 60;
const DELIVERY_LIMIT = 3;
const GRACE = 60_000;

interface DeliveryOptions {
  abort?: TaskAbort;
  redelivered?: boolean;
  /** A message of the Go library: no content type, no record of its producer's. */
  foreign?: boolean;
}

function delivery(
  task: TaskEnvelope,
  { abort = new TaskAbort(), redelivered = false, foreign = false }: DeliveryOptions = {},
): Delivery {
  if (!foreign) void producerLog?.({ taskId: task.taskId, status: 'queued', at: new Date(), task });
  const { content, options } = toMessage(task);
  const msg = {
    content,
    fields: { redelivered },
    properties: {
      ...options,
      contentType: foreign ? undefined : options.contentType,
      headers: options.headers,
    },
  } as unknown as ConsumeMessage;
  return { msg, queue: 'low_priority_queue_0', priority: task.priority, abort };
}

/** Polls with a deadline (no fixed sleep). */
async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('TaskExecutor', () => {
  let executor: TaskExecutor;
  let store: InMemoryTaskLogStore;
  let registry: TaskHandlerRegistry;
  const events: string[] = [];
  const deadLetters: { reason: string; detail: string }[] = [];
  const handedBack: { headers?: Record<string, unknown> }[] = [];
  /** What the fake worker directory reads (a rejection: Redis unreachable). */
  let reports: () => Promise<WorkerReport[]>;
  const dispatched: TaskEnvelope[] = [];
  const scheduledAt: Date[] = [];
  let cancellation: TaskCancellation;

  beforeEach(async () => {
    scheduledAt.length = 0;
    events.length = 0;
    deadLetters.length = 0;
    handedBack.length = 0;
    reports = () => Promise.resolve([]);
    dispatched.length = 0;
    store = new InMemoryTaskLogStore();
    const recordStatus = store.record.bind(store);
    producerLog = recordStatus;
    store.record = (change) => {
      events.push(`record ${change.status}`);
      return recordStatus(change);
    };
    const inspect = store.inspect.bind(store);
    store.inspect = (taskId, options) => {
      events.push(`inspect${options.redelivered ? ' redelivered' : ''}`);
      return inspect(taskId, options);
    };
    const moduleRef = await Test.createTestingModule({
      providers: [
        TaskExecutor,
        TaskHandlerRegistry,
        AttemptProgress,
        { provide: TASK_LOG_STORE, useValue: store },
        TaskLog,
        {
          provide: TaskDispatcher,
          useValue: {
            dispatch: (task: TaskEnvelope) => {
              events.push(`dispatch attempt ${task.attempt}`);
              dispatched.push(task);
              return Promise.resolve('queued');
            },
            schedule: (task: TaskEnvelope, runAt: Date) => {
              events.push(`schedule attempt ${task.attempt}`);
              dispatched.push(task);
              scheduledAt.push(runAt);
              return Promise.resolve('scheduled');
            },
          },
        },
        {
          provide: RESOLVED_OPTIONS,
          useValue: resolveCogmanOptions({
            amqpUri: 'amqp://x',
            redisUri: 'redis://x',
            progressAfter: PROGRESS_AFTER,
            deliveryLimit: DELIVERY_LIMIT,
            unknownTaskGracePeriod: GRACE,
          }),
        },
        // No Redis: the mirror of cancellations is this process's own, always in step.
        { provide: COGMAN_REDIS, useValue: null },
        TaskCancellation,
        {
          provide: TASK_BROKER,
          useValue: {
            deadLetter: (_msg: unknown, _queue: string, reason: string, detail: string) => {
              deadLetters.push({ reason, detail });
              return Promise.resolve();
            },
            handBack: (
              _msg: unknown,
              _queue: string,
              options: { headers?: Record<string, unknown> },
            ) => {
              handedBack.push(options);
              return Promise.resolve();
            },
          },
        },
        { provide: WorkerDirectory, useValue: { read: () => reports() } },
      ],
    }).compile();
    executor = moduleRef.get(TaskExecutor);
    registry = moduleRef.get(TaskHandlerRegistry);
    cancellation = moduleRef.get(TaskCancellation);
  });

  const register = (
    name: string,
    handle: (payload: unknown, ctx: TaskContext) => unknown,
    options: TaskHandlerOptions = {},
  ) => registry.add({ name, options, source: 'spec', resolve: () => ({ handle }) });

  it('runs a first delivery with no Redis call before it, then records its outcome once and acks', async () => {
    const seen: unknown[] = [];
    register('ok', (payload) => {
      events.push('handle');
      seen.push(payload);
    });
    const task = buildTask({ name: 'ok', payload: { a: 1 } }).task;
    const before = Date.now();
    await expect(executor.execute(delivery(task))).resolves.toBe('ack');
    expect(events).toEqual(['handle', 'record success']);
    expect(seen).toEqual([{ a: 1 }]);
    const record = await store.get(task.taskId);
    expect(record).toMatchObject({ status: 'success', retry: 0, duration: expect.any(Number) });
    expect(record?.startedAt?.getTime()).toBeGreaterThanOrEqual(before);
  });

  it('records in_progress only for an attempt that runs past progressAfter', async () => {
    let finish!: () => void;
    register('slow', () => new Promise<void>((resolve) => (finish = resolve)));
    const task = buildTask({ name: 'slow' }).task;
    const executing = executor.execute(delivery(task));
    await until('the late in_progress', () => events.includes('record in_progress'));
    const running = await store.get(task.taskId);
    expect(running).toMatchObject({ status: 'in_progress', startedAt: expect.any(Date) });
    expect(running!.updatedAt.getTime() - running!.startedAt!.getTime()).toBeGreaterThanOrEqual(
      PROGRESS_AFTER,
    );
    finish();
    await expect(executing).resolves.toBe('ack');
    expect(events).toEqual(['record in_progress', 'record success']);
    expect((await store.get(task.taskId))?.startedAt).toEqual(running!.startedAt);
  });

  it('frees the handler slot once the handler has finished, before recording the outcome', async () => {
    register('ok', () => {
      events.push('handle');
    });
    const task = buildTask({ name: 'ok' }).task;
    const release = jest.fn(() => events.push('release'));
    await expect(executor.execute({ ...delivery(task), release })).resolves.toBe('ack');
    expect(events).toEqual(['handle', 'release', 'record success']);
    expect(release).toHaveBeenCalledTimes(1);
  });

  it('publishes the next attempt before recording a failed attempt as retry', async () => {
    register('flaky', () => {
      throw new Error('boom');
    });
    const task = buildTask({ name: 'flaky', retry: 2, primaryKey: 'pk' }).task;
    const failedAt = Date.now();
    await expect(executor.execute(delivery(task))).resolves.toBe('ack');
    expect(events).toEqual(['schedule attempt 2', 'record retry']);
    // The default backoff: exponential from 1 s with jitter, so 0.5 to 1 s for the first retry.
    const wait = scheduledAt[0].getTime() - failedAt;
    expect(wait).toBeGreaterThanOrEqual(450);
    expect(wait).toBeLessThanOrEqual(1100);
    expect(dispatched[0]).toMatchObject({
      taskId: retryTaskId(task.taskId, 2),
      originalTaskId: task.taskId,
      attempt: 2,
      retry: 2,
      primaryKey: 'pk',
      priority: task.priority,
    });
    expect(await store.get(task.taskId)).toMatchObject({ status: 'retry', failError: 'boom' });

    // The last attempt (attempt 3 of retry 2) fails for good.
    const last = { ...dispatched[0], taskId: retryTaskId(task.taskId, 3), attempt: 3 };
    await executor.execute(delivery(last));
    expect(dispatched).toHaveLength(1);
    expect(await store.get(last.taskId)).toMatchObject({ status: 'failed', failError: 'boom' });
  });

  it('checks a redelivery against its record and skips an attempt that already finished', async () => {
    let runs = 0;
    register('once', () => runs++);
    const task = buildTask({ name: 'once' }).task;
    await executor.execute(delivery(task));
    events.length = 0;
    await expect(executor.execute(delivery(task, { redelivered: true }))).resolves.toBe('ack');
    expect(runs).toBe(1);
    expect(events).toEqual(['inspect redelivered']);
  });

  it('runs again an attempt redelivered while still in progress (its worker died)', async () => {
    let runs = 0;
    register('again', () => runs++);
    const task = buildTask({ name: 'again' }).task;
    await store.record({ taskId: task.taskId, status: 'in_progress', at: new Date(), task });
    await executor.execute(delivery(task, { redelivered: true }));
    expect(runs).toBe(1);
    expect((await store.get(task.taskId))?.status).toBe('success');
  });

  it('dead-letters an attempt delivered more than deliveryLimit times, without running it', async () => {
    let runs = 0;
    register('poison', () => runs++);
    const task = buildTask({ name: 'poison' }).task;
    // Deliveries 2 and 3 are redeliveries, counted; the 4th is past the limit of 3.
    for (let delivered = 2; delivered <= DELIVERY_LIMIT; delivered++) {
      await store.record({ taskId: task.taskId, status: 'in_progress', at: new Date(), task });
      await executor.execute(delivery(task, { redelivered: true }));
      store.tasks.get(task.taskId)!.record.status = 'in_progress'; // as if its worker died
    }
    expect(runs).toBe(DELIVERY_LIMIT - 1);
    await expect(executor.execute(delivery(task, { redelivered: true }))).resolves.toBe('ack');
    expect(runs).toBe(DELIVERY_LIMIT - 1);
    expect(deadLetters).toEqual([
      { reason: 'delivery_limit', detail: expect.stringContaining('delivered 4 times') },
    ]);
    expect(await store.get(task.taskId)).toMatchObject({
      status: 'failed',
      failError: expect.stringContaining('dead-lettered (delivery_limit)'),
    });
  });

  it("counts started redeliveries itself on a quorum queue, not the queue's x-delivery-count", async () => {
    let runs = 0;
    register('counted', () => runs++);
    const task = buildTask({ name: 'counted' }).task;
    // The queue counts every return, also of a message read ahead by workers that died.
    const counted = () => {
      const sent = delivery(task, { redelivered: true });
      sent.msg.properties.headers = { ...sent.msg.properties.headers, 'x-delivery-count': 50 };
      return sent;
    };
    await store.record({ taskId: task.taskId, status: 'in_progress', at: new Date(), task });
    await executor.execute(counted());
    expect(runs).toBe(1);
    expect(deadLetters).toEqual([]);
    expect(await store.get(task.taskId)).toMatchObject({ status: 'success' });
  });

  it('skips a queued attempt the mirror knows is cancelled, with no read of its record', async () => {
    const handle = jest.fn();
    register('cancelled', handle);
    const task = buildTask({ name: 'cancelled' }).task;
    cancellation.notify(task.taskId);
    await expect(executor.execute(delivery(task))).resolves.toBe('ack');
    expect(handle).not.toHaveBeenCalled();
    expect(events).toEqual([]);
  });

  it('reads the record of a first delivery while the mirror cannot vouch for cancellations', async () => {
    const handle = jest.fn();
    register('unsure', handle);
    jest.spyOn(cancellation, 'isCancelled').mockReturnValue(undefined);
    const task = buildTask({ name: 'unsure' }).task;
    await store.record({ taskId: task.taskId, status: 'cancelled', at: new Date(), task });
    events.length = 0;
    await expect(executor.execute(delivery(task))).resolves.toBe('ack');
    expect(handle).not.toHaveBeenCalled();
    expect(events).toEqual(['inspect']);
  });

  it('hands back, recording nothing, an attempt shutdown aborted', async () => {
    const abort = new TaskAbort();
    register('slow', () => {
      abort.abort(new WorkerShutdownError());
      throw new Error('aborted');
    });
    const task = buildTask({ name: 'slow', retry: 3 }).task;
    await expect(executor.execute(delivery(task, { abort }))).resolves.toBe('hand-back');
    expect(events).toEqual([]);
    expect(dispatched).toEqual([]);
  });

  it('does not run the handler of a delivery aborted before its turn', async () => {
    const handle = jest.fn();
    register('early', handle);
    const task = buildTask({ name: 'early' }).task;
    const abort = new TaskAbort();
    abort.abort(new WorkerShutdownError());
    await expect(executor.execute(delivery(task, { abort }))).resolves.toBe('hand-back');
    expect(handle).not.toHaveBeenCalled();
  });

  it('hands a task no handler is registered for back, counted, freeing its slot at once', async () => {
    const task = buildTask({ name: 'nobody', retry: 5 }).task;
    const release = jest.fn();
    const before = Date.now();
    await expect(executor.execute({ ...delivery(task), release })).resolves.toBe('ack');
    expect(release).toHaveBeenCalled();
    expect(deadLetters).toEqual([]);
    expect(handedBack).toEqual([
      {
        headers: {
          [UNHANDLED_HEADERS.handBacks]: 1,
          [UNHANDLED_HEADERS.since]: expect.any(Number) as number,
        },
      },
    ]);
    const since = handedBack[0].headers![UNHANDLED_HEADERS.since] as number;
    expect(since).toBeGreaterThanOrEqual(before);
    expect((await store.get(task.taskId))?.status).toBe('queued');

    // Handed back again: the count grows, the first time stays.
    const again = delivery(task);
    again.msg.properties.headers = {
      ...again.msg.properties.headers,
      [UNHANDLED_HEADERS.handBacks]: 1,
      [UNHANDLED_HEADERS.since]: since,
    };
    await executor.execute(again);
    expect(handedBack[1].headers).toEqual({
      [UNHANDLED_HEADERS.handBacks]: 2,
      [UNHANDLED_HEADERS.since]: since,
    });
  });

  const unhandledFor = (task: TaskEnvelope, ms: number, handBacks: number) => {
    const late = delivery(task);
    late.msg.properties.headers = {
      ...late.msg.properties.headers,
      [UNHANDLED_HEADERS.handBacks]: handBacks,
      [UNHANDLED_HEADERS.since]: Date.now() - ms,
    };
    return late;
  };

  it('dead-letters an unhandled task past unknownTaskGracePeriod, saying no live worker has its handler', async () => {
    const task = buildTask({ name: 'nobody', retry: 5 }).task;
    await expect(executor.execute(unhandledFor(task, GRACE + 1, 7))).resolves.toBe('ack');
    expect(handedBack).toEqual([]);
    expect(deadLetters).toEqual([
      {
        reason: 'unknown_task',
        detail: `no handler for task "nobody" in this worker, and none took it within unknownTaskGracePeriod (${GRACE} ms, handed back 7 time(s)): no live worker has a handler for "nobody"`,
      },
    ]);
    expect(dispatched).toEqual([]);
    expect(await store.get(task.taskId)).toMatchObject({
      status: 'failed',
      failError: expect.stringContaining('dead-lettered (unknown_task)') as string,
    });
  });

  it('says which live workers have the handler of an unhandled task it dead-letters', async () => {
    const report = (id: string, tasks: string[]): WorkerReport => ({
      id,
      host: 'h',
      pid: 1,
      tasks,
      held: new Map(),
    });
    reports = () => Promise.resolve([report('w-1', ['nobody', 'x']), report('w-2', ['x'])]);
    await executor.execute(unhandledFor(buildTask({ name: 'nobody' }).task, GRACE, 3));
    expect(deadLetters[0].detail).toMatch(
      /: live worker\(s\) w-1 have a handler for "nobody" but did not take it$/,
    );
    reports = () => Promise.reject(new Error('Redis is not connected'));
    await executor.execute(unhandledFor(buildTask({ name: 'nobody' }).task, GRACE, 3));
    expect(deadLetters[1].detail).toMatch(/: the worker reports could not be read$/);
  });

  it('leaves an unhandled task to the worker to hand back when shutdown cuts its pause short', async () => {
    const abort = new TaskAbort();
    const executing = executor.execute(delivery(buildTask({ name: 'nobody' }).task, { abort }));
    abort.abort(new WorkerShutdownError());
    await expect(executing).resolves.toBe('hand-back');
    expect(handedBack).toEqual([]);
    expect(deadLetters).toEqual([]);
  });

  it("parses a Go producer's bytes for a handler that takes JSON, and dead-letters bytes that are not", async () => {
    const seen: unknown[] = [];
    register('go-json', (payload) => void seen.push(payload), { payload: 'json' });
    const task = buildTask({ name: 'go-json', payload: Buffer.from('{"order":7}') }).task;
    await expect(executor.execute(delivery(task, { foreign: true }))).resolves.toBe('ack');
    // As a Node producer sends it, too.
    await executor.execute(delivery(buildTask({ name: 'go-json', payload: { order: 8 } }).task));
    expect(seen).toEqual([{ order: 7 }, { order: 8 }]);

    const bad = buildTask({ name: 'go-json', payload: Buffer.from('not json') }).task;
    await executor.execute(delivery(bad, { foreign: true }));
    expect(deadLetters).toEqual([
      {
        reason: 'undecodable_payload',
        detail: expect.stringContaining('not valid JSON') as string,
      },
    ]);
  });

  it('dead-letters a message without TaskName or task id, and one whose JSON does not parse', async () => {
    register('known', () => {});
    const base = delivery(buildTask({ name: 'known' }).task);
    const headers = base.msg.properties.headers!;

    const noName = {
      ...base,
      msg: {
        ...base.msg,
        properties: { ...base.msg.properties, headers: { ...headers, TaskName: undefined } },
      },
    };
    await executor.execute(noName);
    const noId = {
      ...base,
      msg: {
        ...base.msg,
        properties: {
          ...base.msg.properties,
          messageId: undefined,
          headers: { ...headers, TaskID: undefined },
        },
      },
    };
    await executor.execute(noId);
    const badJson = { ...base, msg: { ...base.msg, content: Buffer.from('{nope') } };
    await executor.execute(badJson);

    expect(deadLetters.map((d) => d.reason)).toEqual([
      'missing_task_name',
      'missing_task_id',
      'undecodable_payload',
    ]);
    expect(events.filter((e) => e.startsWith('inspect'))).toEqual([]);
  });

  it('publishes the next attempt at once with a zero backoff', async () => {
    register('flaky', () => {
      throw new Error('boom');
    });
    const task = buildTask({ name: 'flaky', retry: 1, backoff: { type: 'fixed', delay: 0 } }).task;
    await executor.execute(delivery(task));
    expect(events).toEqual(['dispatch attempt 2', 'record retry']);
    expect(dispatched[0].backoff).toEqual({ type: 'fixed', delay: 0 });
  });

  it("uses the handler's retry and backoff when the task sets none, and the task's when it does", async () => {
    register(
      'h',
      () => {
        throw new Error('boom');
      },
      { retry: 1, backoff: (attempt) => attempt * 7_000 },
    );
    const byHandler = buildTask({ name: 'h' }).task;
    const t0 = Date.now();
    await executor.execute(delivery(byHandler));
    expect(events).toContain('schedule attempt 2');
    expect(scheduledAt[0].getTime() - t0).toBeGreaterThanOrEqual(6_900);
    expect((await store.get(byHandler.taskId))?.retry).toBe(1);

    events.length = 0;
    const byTask = buildTask({ name: 'h', retry: 0 }).task;
    await executor.execute(delivery(byTask));
    expect(events).toEqual(['record failed']);
  });

  it('does not retry an unrecoverable error', async () => {
    register('bad-input', () => {
      throw new TaskUnrecoverableError('the address is invalid');
    });
    const task = buildTask({ name: 'bad-input', retry: 5 }).task;
    await executor.execute(delivery(task));
    expect(dispatched).toEqual([]);
    expect(await store.get(task.taskId)).toMatchObject({
      status: 'failed',
      failError: 'the address is invalid',
    });
  });

  it('times out a handler that ignores its signal, frees the slot and ignores its late result', async () => {
    let signal: AbortSignal | undefined;
    let finish!: () => void;
    register(
      'hang',
      (_payload, ctx) => {
        signal = ctx.signal;
        return new Promise<void>((resolve) => (finish = resolve));
      },
      { timeout: 50, retry: 1, backoff: { type: 'fixed', delay: 0 } },
    );
    const task = buildTask({ name: 'hang' }).task;
    await expect(executor.execute(delivery(task))).resolves.toBe('ack');
    expect(signal?.aborted).toBe(true);
    expect(signal?.reason).toBeInstanceOf(TaskTimeoutError);
    expect(await store.get(task.taskId)).toMatchObject({
      status: 'retry',
      failError: 'Task timed out after 50 ms',
    });
    expect(dispatched.map((t) => t.attempt)).toEqual([2]);
    finish();
    expect((await store.get(task.taskId))?.status).toBe('retry');
  });

  it('acks a task cancelled while its handler runs (its record still queued), recording nothing more', async () => {
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    register(
      'cancel-me',
      (_payload, ctx) => {
        started();
        return new Promise((_resolve, reject) =>
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error)),
        );
      },
      { retry: 3 },
    );
    const task = buildTask({ name: 'cancel-me' }).task;
    const executing = executor.execute(delivery(task));
    await running;
    expect((await store.get(task.taskId))?.status).toBe('queued');
    await store.record({ taskId: task.taskId, status: 'cancelled', at: new Date() });
    cancellation.notify(task.taskId);
    await expect(executing).resolves.toBe('ack');
    expect(dispatched).toEqual([]);
    expect((await store.get(task.taskId))?.status).toBe('cancelled');
  });

  it("describes a foreign message's attempt (no producer's record) with its outcome", async () => {
    register('ok', () => {
      events.push('handle');
    });
    const task = buildTask({ name: 'ok', primaryKey: 'pk' }).task;
    const described: string[] = [];
    const record = store.record.bind(store);
    store.record = (change) => {
      if (change.task) described.push(change.status);
      return record(change);
    };
    await executor.execute(delivery(task, { foreign: true }));
    expect(events).toEqual(['handle', 'record success']);
    expect(described).toEqual(['success']);
    expect(await store.get(task.taskId)).toMatchObject({
      name: 'ok',
      primaryKey: 'pk',
      status: 'success',
    });
  });

  it('describes a redelivery whose record lacks the description, with its outcome or when it skips it', async () => {
    register('ok', () => {
      events.push('handle');
    });
    producerLog = undefined;
    const lacking = buildTask({ name: 'ok' }).task;
    await store.record({ taskId: lacking.taskId, status: 'in_progress', at: new Date() });
    await executor.execute(delivery(lacking, { redelivered: true }));
    expect(await store.get(lacking.taskId)).toMatchObject({ name: 'ok', status: 'success' });

    events.length = 0;
    const finished = buildTask({ name: 'ok' }).task;
    await store.record({ taskId: finished.taskId, status: 'success', at: new Date() });
    events.length = 0;
    await expect(executor.execute(delivery(finished, { redelivered: true }))).resolves.toBe('ack');
    expect(events).toEqual(['inspect redelivered', 'record in_progress']);
    expect(await store.get(finished.taskId)).toMatchObject({ name: 'ok', status: 'success' });
  });
});
