import { Test } from '@nestjs/testing';
import type { ConsumeMessage } from 'amqplib';
import { TASK_BROKER } from '../broker/task-broker';
import { buildTask } from '../task';
import { TaskDispatcher } from '../dispatch/task.dispatcher';
import { resolveCogmanOptions, RESOLVED_OPTIONS } from '../config';
import type { TaskHandlerOptions } from '../decorators/task-handler.decorator';
import { TaskTimeoutError, TaskUnrecoverableError, WorkerShutdownError } from '../errors';
import { COGMAN_REDIS } from '../store/redis-connection';
import { TaskLog } from '../store/task-log';
import { TASK_LOG_STORE } from '../store/task-log.store';
import { retryTaskId, toMessage, type TaskContext, type TaskEnvelope } from '../task';
import { InMemoryTaskLogStore } from '../testing/in-memory-task-log.store';
import { TaskAbort } from './task-abort';
import { TaskCancellation } from './task-cancellation';
import { TaskHandlerRegistry } from './task-handler.registry';
import { TaskExecutor, type Delivery } from './task.executor';

/** The store of the current test, where `delivery` records each task as its producer would. */
let producerLog: InMemoryTaskLogStore['record'] | undefined;

function delivery(task: TaskEnvelope, abort = new TaskAbort()): Delivery {
  void producerLog?.({ taskId: task.taskId, status: 'queued', at: new Date(), task });
  const { content, options } = toMessage(task);
  const msg = {
    content,
    fields: {},
    properties: { ...options, headers: options.headers },
  } as unknown as ConsumeMessage;
  return { msg, queue: 'low_priority_queue_0', priority: task.priority, abort };
}

describe('TaskExecutor', () => {
  let executor: TaskExecutor;
  let store: InMemoryTaskLogStore;
  let registry: TaskHandlerRegistry;
  const events: string[] = [];
  const deadLetters: { reason: string; detail: string }[] = [];
  const dispatched: TaskEnvelope[] = [];
  const scheduledAt: Date[] = [];
  let cancellation: TaskCancellation;

  beforeEach(async () => {
    scheduledAt.length = 0;
    events.length = 0;
    deadLetters.length = 0;
    dispatched.length = 0;
    store = new InMemoryTaskLogStore();
    const recordStatus = store.record.bind(store);
    producerLog = recordStatus;
    store.record = (change) => {
      events.push(`record ${change.status}`);
      return recordStatus(change);
    };
    const moduleRef = await Test.createTestingModule({
      providers: [
        TaskExecutor,
        TaskHandlerRegistry,
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
          useValue: resolveCogmanOptions({ amqpUri: 'amqp://x', redisUri: 'redis://x' }),
        },
        { provide: COGMAN_REDIS, useValue: { publish: () => Promise.resolve(0) } },
        TaskCancellation,
        {
          provide: TASK_BROKER,
          useValue: {
            deadLetter: (_msg: unknown, _queue: string, reason: string, detail: string) => {
              deadLetters.push({ reason, detail });
              return Promise.resolve();
            },
          },
        },
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

  it('records in_progress, runs the handler, records success with a duration, then acks', async () => {
    const seen: unknown[] = [];
    register('ok', (payload) => {
      events.push('handle');
      seen.push(payload);
    });
    const task = buildTask({ name: 'ok', payload: { a: 1 } }).task;
    await expect(executor.execute(delivery(task))).resolves.toBe('ack');
    expect(events).toEqual(['record in_progress', 'handle', 'record success']);
    expect(seen).toEqual([{ a: 1 }]);
    expect((await store.get(task.taskId))?.duration).toEqual(expect.any(Number));
  });

  it('frees the handler slot once the handler has finished, before recording the outcome', async () => {
    register('ok', () => {
      events.push('handle');
    });
    const task = buildTask({ name: 'ok' }).task;
    const release = jest.fn(() => events.push('release'));
    await expect(executor.execute({ ...delivery(task), release })).resolves.toBe('ack');
    expect(events).toEqual(['record in_progress', 'handle', 'release', 'record success']);
    expect(release).toHaveBeenCalledTimes(1);
  });

  it('publishes the next attempt before recording a failed attempt as retry', async () => {
    register('flaky', () => {
      throw new Error('boom');
    });
    const task = buildTask({ name: 'flaky', retry: 2, primaryKey: 'pk' }).task;
    const failedAt = Date.now();
    await expect(executor.execute(delivery(task))).resolves.toBe('ack');
    expect(events).toEqual(['record in_progress', 'schedule attempt 2', 'record retry']);
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

  it('acks and skips a redelivered attempt that already finished', async () => {
    let runs = 0;
    register('once', () => runs++);
    const task = buildTask({ name: 'once' }).task;
    await executor.execute(delivery(task));
    await expect(executor.execute(delivery(task))).resolves.toBe('ack');
    expect(runs).toBe(1);
  });

  it('runs again an attempt redelivered while still in progress (its worker died)', async () => {
    let runs = 0;
    register('again', () => runs++);
    const task = buildTask({ name: 'again' }).task;
    await store.record({ taskId: task.taskId, status: 'in_progress', at: new Date(), task });
    await executor.execute(delivery(task));
    expect(runs).toBe(1);
    expect((await store.get(task.taskId))?.status).toBe('success');
  });

  it('requeues without recording anything when shutdown aborted the handler', async () => {
    const abort = new TaskAbort();
    register('slow', () => {
      abort.abort(new WorkerShutdownError());
      throw new Error('aborted');
    });
    const task = buildTask({ name: 'slow', retry: 3 }).task;
    await expect(executor.execute(delivery(task, abort))).resolves.toBe('requeue');
    expect(events).toEqual(['record in_progress']);
    expect(dispatched).toEqual([]);
  });

  it('does not run the handler of a delivery aborted before its turn', async () => {
    const handle = jest.fn();
    register('early', handle);
    const task = buildTask({ name: 'early' }).task;
    const abort = new TaskAbort();
    abort.abort(new WorkerShutdownError());
    await expect(executor.execute(delivery(task, abort))).resolves.toBe('requeue');
    expect(handle).not.toHaveBeenCalled();
  });

  it('dead-letters a task no handler is registered for, and records it failed', async () => {
    const task = buildTask({ name: 'nobody', retry: 5 }).task;
    await expect(executor.execute(delivery(task))).resolves.toBe('ack');
    expect(deadLetters).toEqual([
      { reason: 'unknown_task', detail: 'no handler for task "nobody" in this worker' },
    ]);
    expect(dispatched).toEqual([]);
    expect((await store.get(task.taskId))?.status).toBe('failed');
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
    expect(events.filter((e) => e === 'record in_progress')).toEqual([]);
  });

  it('publishes the next attempt at once with a zero backoff', async () => {
    register('flaky', () => {
      throw new Error('boom');
    });
    const task = buildTask({ name: 'flaky', retry: 1, backoff: { type: 'fixed', delay: 0 } }).task;
    await executor.execute(delivery(task));
    expect(events).toEqual(['record in_progress', 'dispatch attempt 2', 'record retry']);
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
    expect(events).toEqual(['record in_progress', 'record failed']);
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

  it('acks a task cancelled while its handler runs, recording nothing more', async () => {
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
    await store.record({ taskId: task.taskId, status: 'cancelled', at: new Date() });
    await cancellation.notify(task.taskId);
    await expect(executing).resolves.toBe('ack');
    expect(dispatched).toEqual([]);
    expect((await store.get(task.taskId))?.status).toBe('cancelled');
  });

  it('describes an attempt its producer never recorded (an expired record, a foreign message) with its outcome', async () => {
    register('ok', () => {
      events.push('handle');
    });
    const task = buildTask({ name: 'ok', primaryKey: 'pk' }).task;
    producerLog = undefined;
    const described: string[] = [];
    const record = store.record.bind(store);
    store.record = (change) => {
      if (change.task) described.push(change.status);
      return record(change);
    };
    await executor.execute(delivery(task));
    // No write of its own: the description goes with the outcome, after the handler.
    expect(events).toEqual(['record in_progress', 'handle', 'record success']);
    expect(described).toEqual(['success']);
    expect(await store.get(task.taskId)).toMatchObject({
      name: 'ok',
      primaryKey: 'pk',
      status: 'success',
    });
  });

  it('describes an undescribed attempt whose outcome is a retry, or that shutdown hands back', async () => {
    register('flaky', () => {
      throw new Error('boom');
    });
    const retried = buildTask({ name: 'flaky', retry: 1 }).task;
    producerLog = undefined;
    await executor.execute(delivery(retried));
    expect(events).toEqual(['record in_progress', 'schedule attempt 2', 'record retry']);
    expect(await store.get(retried.taskId)).toMatchObject({ name: 'flaky', status: 'retry' });

    // Shutdown gave up on it: requeued, and described meanwhile.
    events.length = 0;
    const requeued = buildTask({ name: 'ok' }).task;
    register('ok', () => {
      abort.abort(new WorkerShutdownError());
    });
    const abort = new TaskAbort();
    await expect(executor.execute(delivery(requeued, abort))).resolves.toBe('requeue');
    expect(events).toEqual(['record in_progress', 'record in_progress']);
    expect(await store.get(requeued.taskId)).toMatchObject({ name: 'ok', status: 'in_progress' });
  });

  it('describes an undescribed attempt it skips as finished (a redelivery)', async () => {
    register('ok', () => {
      events.push('handle');
    });
    const task = buildTask({ name: 'ok' }).task;
    producerLog = undefined;
    await store.record({ taskId: task.taskId, status: 'success', at: new Date() });
    events.length = 0;
    await expect(executor.execute(delivery(task))).resolves.toBe('ack');
    expect(events).toEqual(['record in_progress', 'record in_progress']);
    expect(await store.get(task.taskId)).toMatchObject({ name: 'ok', status: 'success' });
  });
});
