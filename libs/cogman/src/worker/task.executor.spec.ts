import { Test } from '@nestjs/testing';
import type { ConsumeMessage } from 'amqplib';
import { TaskPublisher } from '../broker/task.publisher';
import { buildTask } from '../client/cogman.client';
import { TaskDispatcher } from '../client/task.dispatcher';
import { TaskLog } from '../store/task-log';
import { TASK_LOG_STORE } from '../store/task-log.store';
import { retryTaskId, toMessage, type TaskEnvelope } from '../task';
import { InMemoryTaskLogStore } from '../testing/in-memory-task-log.store';
import { TaskHandlerRegistry } from './task-handler.registry';
import { TaskExecutor, type Delivery } from './task.executor';

function delivery(task: TaskEnvelope, signal = new AbortController().signal): Delivery {
  const { content, options } = toMessage(task);
  const msg = {
    content,
    fields: {},
    properties: { ...options, headers: options.headers },
  } as unknown as ConsumeMessage;
  return { msg, queue: 'low_priority_queue_0', priority: task.priority, signal };
}

describe('TaskExecutor', () => {
  let executor: TaskExecutor;
  let store: InMemoryTaskLogStore;
  let registry: TaskHandlerRegistry;
  const events: string[] = [];
  const deadLetters: { reason: string; detail: string }[] = [];
  const dispatched: TaskEnvelope[] = [];

  beforeEach(async () => {
    events.length = 0;
    deadLetters.length = 0;
    dispatched.length = 0;
    store = new InMemoryTaskLogStore();
    const recordStatus = store.record.bind(store);
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
          },
        },
        {
          provide: TaskPublisher,
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
  });

  const register = (name: string, handle: (payload: unknown) => unknown) =>
    registry.add({ name, options: {}, source: 'spec', resolve: () => ({ handle }) });

  it('records in_progress, runs the handler, records success with a duration, then acks', async () => {
    const seen: unknown[] = [];
    register('ok', (payload) => {
      events.push('handle');
      seen.push(payload);
    });
    const task = buildTask({ name: 'ok', payload: { a: 1 } });
    await expect(executor.execute(delivery(task))).resolves.toBe('ack');
    expect(events).toEqual(['record in_progress', 'handle', 'record success']);
    expect(seen).toEqual([{ a: 1 }]);
    expect((await store.get(task.taskId))?.duration).toEqual(expect.any(Number));
  });

  it('publishes the next attempt before recording a failed attempt as retry', async () => {
    register('flaky', () => {
      throw new Error('boom');
    });
    const task = buildTask({ name: 'flaky', retry: 2, primaryKey: 'pk' });
    await expect(executor.execute(delivery(task))).resolves.toBe('ack');
    expect(events).toEqual(['record in_progress', 'dispatch attempt 2', 'record retry']);
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
    const task = buildTask({ name: 'once' });
    await executor.execute(delivery(task));
    await expect(executor.execute(delivery(task))).resolves.toBe('ack');
    expect(runs).toBe(1);
  });

  it('runs again an attempt redelivered while still in progress (its worker died)', async () => {
    let runs = 0;
    register('again', () => runs++);
    const task = buildTask({ name: 'again' });
    await store.record({ taskId: task.taskId, status: 'in_progress', at: new Date(), task });
    await executor.execute(delivery(task));
    expect(runs).toBe(1);
    expect((await store.get(task.taskId))?.status).toBe('success');
  });

  it('requeues without recording anything when shutdown aborted the handler', async () => {
    const controller = new AbortController();
    register('slow', () => {
      controller.abort();
      throw new Error('aborted');
    });
    const task = buildTask({ name: 'slow', retry: 3 });
    await expect(executor.execute(delivery(task, controller.signal))).resolves.toBe('requeue');
    expect(events).toEqual(['record in_progress']);
    expect(dispatched).toEqual([]);
  });

  it('dead-letters a task no handler is registered for, and records it failed', async () => {
    const task = buildTask({ name: 'nobody', retry: 5 });
    await expect(executor.execute(delivery(task))).resolves.toBe('ack');
    expect(deadLetters).toEqual([
      { reason: 'unknown_task', detail: 'no handler for task "nobody" in this worker' },
    ]);
    expect(dispatched).toEqual([]);
    expect((await store.get(task.taskId))?.status).toBe('failed');
  });

  it('dead-letters a message without TaskName or task id, and one whose JSON does not parse', async () => {
    register('known', () => {});
    const base = delivery(buildTask({ name: 'known' }));
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
});
