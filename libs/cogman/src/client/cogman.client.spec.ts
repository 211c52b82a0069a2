import { Test } from '@nestjs/testing';
import { TASK_BROKER } from '../broker/task-broker';
import { CogmanInspector } from '../inspector/cogman.inspector';
import { resolveCogmanOptions, RESOLVED_OPTIONS } from '../config';
import {
  OfflineBufferFullError,
  TaskInvalidError,
  TaskNotFoundError,
  TasksNotSentError,
  TaskStatusConflictError,
} from '../errors';
import { TaskScheduler } from '../scheduler/task.scheduler';
import { TaskLog } from '../store/task-log';
import { TASK_LOG_STORE } from '../store/task-log.store';
import { retryTaskId, type SendTaskOptions, type TaskEnvelope } from '../task';
import { InMemoryTaskLogStore } from '../testing/in-memory-task-log.store';
import { TaskCancellation } from '../worker/task-cancellation';
import { CogmanClient } from './cogman.client';
import { OfflineTaskBuffer } from '../dispatch/offline-task.buffer';
import { TaskDispatcher } from '../dispatch/task.dispatcher';

describe('CogmanClient', () => {
  /** Messages the fake broker confirmed; a task named "unpublishable" is refused. */
  const dispatched: TaskEnvelope[] = [];
  const notified: string[] = [];
  let store: InMemoryTaskLogStore;
  let client: CogmanClient;
  /** The fake broker: `connected` can be switched, `reconnect()` tells the listeners. */
  const broker = {
    connected: true,
    listeners: [] as (() => void)[],
    reconnect() {
      this.connected = true;
      for (const listener of this.listeners) listener();
    },
  };

  beforeEach(async () => {
    dispatched.length = 0;
    notified.length = 0;
    broker.connected = true;
    broker.listeners = [];
    store = new InMemoryTaskLogStore();
    const moduleRef = await Test.createTestingModule({
      providers: [
        CogmanClient,
        TaskDispatcher,
        OfflineTaskBuffer,
        TaskScheduler,
        TaskLog,
        { provide: TASK_LOG_STORE, useValue: store },
        {
          provide: RESOLVED_OPTIONS,
          useValue: resolveCogmanOptions({
            amqpUri: 'amqp://x',
            redisUri: 'redis://x',
            offlineBufferSize: 3,
            maxPayloadSize: 1000,
          }),
        },
        {
          provide: TASK_BROKER,
          useValue: {
            started: true,
            get connected() {
              return broker.connected;
            },
            onReconnect: (listener: () => void) => broker.listeners.push(listener),
            publish: (task: TaskEnvelope) => {
              if (!broker.connected) return Promise.reject(new Error('timeout'));
              if (task.name === 'unpublishable') return Promise.reject(new Error('nacked'));
              dispatched.push(task);
              return Promise.resolve();
            },
          },
        },
        {
          provide: TaskCancellation,
          useValue: { notify: (id: string) => (notified.push(id), Promise.resolve()) },
        },
        { provide: CogmanInspector, useValue: {} },
      ],
    }).compile();
    client = moduleRef.get(CogmanClient);
  });

  const circular: Record<string, unknown> = {};
  circular.self = circular;

  it.each<[string, unknown, string]>([
    ['no name', { payload: 1 }, 'name'],
    ['an empty name', { name: '  ' }, 'name'],
    ['a name over 255 bytes', { name: 'é'.repeat(128) }, 'name'],
    ['a bad priority', { name: 'x', priority: 'urgent' }, 'priority'],
    ['a Go-style priority', { name: 'x', priority: 'High' }, 'priority'],
    ['a negative retry', { name: 'x', retry: -1 }, 'retry'],
    ['a fractional retry', { name: 'x', retry: 1.5 }, 'retry'],
    ['an empty primary key', { name: 'x', primaryKey: '' }, 'primaryKey'],
    ['a non-string header', { name: 'x', headers: { a: 1 } }, 'headers'],
    ['a reserved header', { name: 'x', headers: { TaskID: 'forged' } }, 'headers'],
    ['a zero timeout', { name: 'x', timeout: 0 }, 'timeout'],
    ['a backoff function', { name: 'x', backoff: () => 5 }, 'backoff'],
    ['an unknown backoff type', { name: 'x', backoff: { type: 'linear' } }, 'backoff'],
    ['a fixed backoff without delay', { name: 'x', backoff: { type: 'fixed' } }, 'backoff'],
    ['a negative delay', { name: 'x', delay: -1 }, 'delay'],
    ['both delay and runAt', { name: 'x', delay: 5, runAt: new Date() }, 'delay'],
    ['an invalid runAt', { name: 'x', runAt: new Date('nope') }, 'runAt'],
    ['a runAt that is not a Date', { name: 'x', runAt: '2030-01-01' }, 'runAt'],
    ['a circular payload', { name: 'x', payload: circular }, 'payload'],
    ['a BigInt payload', { name: 'x', payload: { n: 10n } }, 'payload'],
    ['a function payload', { name: 'x', payload: () => 1 }, 'payload'],
    ['no options', undefined, 'options'],
    ['a misspelt option', { name: 'x', retires: 3 }, 'retires'],
    ['an unknown option', { name: 'x', queue: 'q' }, 'queue'],
    ['a Map payload', { name: 'x', payload: new Map([['a', 1]]) }, 'payload'],
    ['a nested Set', { name: 'x', payload: { ids: new Set([1]) } }, 'payload.ids'],
    ['a nested Buffer', { name: 'x', payload: { file: Buffer.from('x') } }, 'payload.file'],
    ['a typed array', { name: 'x', payload: [new Uint8Array(2)] }, 'payload[0]'],
    ['a NaN', { name: 'x', payload: { n: NaN } }, 'payload.n'],
    ['a function in the payload', { name: 'x', payload: { f: () => 1 } }, 'payload.f'],
    ['a RegExp', { name: 'x', payload: { r: /x/ } }, 'payload.r'],
    ['a payload over maxPayloadSize', { name: 'x', payload: 'x'.repeat(1000) }, 'payload'],
  ])(
    'rejects a task with %s before anything is written or published',
    async (_case, options, field) => {
      const sending = client.sendTask(options as SendTaskOptions);
      await expect(sending).rejects.toThrow(TaskInvalidError);
      await expect(sending).rejects.toMatchObject({ field, code: 'COGMAN_TASK_INVALID' });
      expect(dispatched).toEqual([]);
      expect(store.changes).toEqual([]);
    },
  );

  it('names the option a misspelt key stands for, and the limit a payload is over', async () => {
    await expect(client.sendTask({ name: 'x', retires: 3 } as SendTaskOptions)).rejects.toThrow(
      '"retires" is not a task option (did you mean "retry"?)',
    );
    await expect(client.sendTask({ name: 'x', payload: new Set([1]) })).rejects.toThrow(
      'is a Set, which JSON does not keep: send an array ([...set])',
    );
    await expect(client.sendTask({ name: 'x', payload: Buffer.alloc(1001) })).rejects.toThrow(
      'is 1001 bytes encoded, more than maxPayloadSize (1000 bytes)',
    );
    // Dates, objects of one's own classes and plain values pass.
    class Order {
      constructor(readonly id = 7) {}
    }
    const payload = { at: new Date(0), order: new Order(), list: [1, 'a', null, true] };
    await expect(client.sendTask({ name: 'x', payload })).resolves.toMatchObject({
      status: 'queued',
    });
  });

  it('rejects a bulk send with one invalid task before sending any, naming its index', async () => {
    const sending = client.sendTasks([{ name: 'ok' }, { name: 'ok', retry: -2 }]);
    await expect(sending).rejects.toMatchObject({
      field: 'tasks[1].retry',
      code: 'COGMAN_TASK_INVALID',
    });
    expect(dispatched).toEqual([]);
  });

  it('sends tasks in bulk, in order', async () => {
    const records = await client.sendTasks([{ name: 'a' }, { name: 'b', priority: 'high' }]);
    expect(records.map((r) => [r.name, r.priority, r.status])).toEqual([
      ['a', 'low', 'queued'],
      ['b', 'high', 'queued'],
    ]);
    expect(dispatched).toHaveLength(2);
  });

  it('reports which tasks of a bulk send were not sent, with the records of those that were', async () => {
    const sending = client.sendTasks([{ name: 'a' }, { name: 'unpublishable' }, { name: 'c' }]);
    await expect(sending).rejects.toThrow(TasksNotSentError);
    const error = (await sending.catch((e: unknown) => e)) as TasksNotSentError;
    expect(error.failures.map((f) => f.index)).toEqual([1]);
    expect(error.sent.map((r) => (r as { name: string } | undefined)?.name)).toEqual([
      'a',
      undefined,
      'c',
    ]);
    expect(error.message).toBe('1 of 3 tasks were not sent; the first (index 1): nacked');
  });

  it('gives a valid task an id, defaults and its payload, and returns it queued', async () => {
    const record = await client.sendTask({ name: 'email', payload: { to: 'a@b.c' } });
    expect(record).toMatchObject({
      name: 'email',
      priority: 'low',
      retry: 0,
      attempt: 1,
      primaryKey: null,
      status: 'queued',
      payload: { to: 'a@b.c' },
    });
    expect(record.originalTaskId).toBe(record.taskId);
    expect(record.taskId).toMatch(/^[0-9a-f-]{36}$/);
    expect(dispatched).toHaveLength(1);
  });

  it('schedules a task with a delay or a future runAt, and publishes one due now at once', async () => {
    const later = await client.sendTask({ name: 'later', delay: 60_000 });
    expect(later.status).toBe('scheduled');
    expect(later.runAt!.getTime()).toBeGreaterThan(Date.now() + 59_000);
    expect(store.schedule.get(later.taskId)).toBe(later.runAt!.getTime());
    const at = await client.sendTask({ name: 'at', runAt: new Date(Date.now() + 5_000) });
    expect(at.status).toBe('scheduled');
    const past = await client.sendTask({ name: 'past', runAt: new Date(Date.now() - 5_000) });
    const now = await client.sendTask({ name: 'now', delay: 0 });
    expect([past.status, now.status]).toEqual(['queued', 'queued']);
    expect(dispatched.map((task) => task.name)).toEqual(['past', 'now']);
  });

  describe('cancelTask', () => {
    it('cancels a scheduled task: off the schedule, never published', async () => {
      const task = await client.sendTask({ name: 'later', delay: 60_000 });
      await expect(client.cancelTask(task.taskId)).resolves.toMatchObject({ status: 'cancelled' });
      expect(store.schedule.has(task.taskId)).toBe(false);
      // Every cancellation reaches this process's workers at once (others: the set and channel).
      expect(notified).toEqual([task.taskId]);
    });

    it('cancels a queued task (workers skip it) and a running one, whatever status its record shows', async () => {
      const queued = await client.sendTask({ name: 'queued' });
      await expect(client.cancelTask(queued.taskId)).resolves.toMatchObject({
        status: 'cancelled',
      });
      const running = await client.sendTask({ name: 'running' });
      await store.record({ taskId: running.taskId, status: 'in_progress', at: new Date() });
      await client.cancelTask(running.taskId);
      expect(notified).toEqual([queued.taskId, running.taskId]);
    });

    it('refuses a finished task, and an unknown one', async () => {
      const task = await client.sendTask({ name: 'done' });
      await store.record({ taskId: task.taskId, status: 'success', at: new Date() });
      const refusal = client.cancelTask(task.taskId);
      await expect(refusal).rejects.toThrow(TaskStatusConflictError);
      await expect(refusal).rejects.toThrow(
        `Cannot cancel task ${task.taskId}: it is success; it has already finished`,
      );
      await expect(client.cancelTask('nope')).rejects.toThrow(TaskNotFoundError);
    });

    it('cancels the current attempt of a retried task, given the first attempt id', async () => {
      const task = await client.sendTask({ name: 'retried', retry: 3 });
      await store.record({ taskId: task.taskId, status: 'retry', at: new Date() });
      const second = { ...dispatched[0], taskId: retryTaskId(task.taskId, 2), attempt: 2 };
      await store.record({
        taskId: second.taskId,
        status: 'scheduled',
        at: new Date(),
        task: second,
        runAt: new Date(Date.now() + 60_000),
      });
      await expect(client.cancelTask(task.taskId)).resolves.toMatchObject({
        taskId: second.taskId,
        status: 'cancelled',
      });
      // A next attempt that a worker tries to create afterwards is refused.
      const dispatcher = (client as unknown as { dispatcher: TaskDispatcher }).dispatcher;
      const third = { ...second, taskId: retryTaskId(task.taskId, 3), attempt: 3 };
      await expect(dispatcher.dispatch(third, { unlessCancelled: second.taskId })).resolves.toBe(
        'cancelled',
      );
      expect(dispatched.map((t) => t.taskId)).not.toContain(third.taskId);
    });
  });

  describe('runNow', () => {
    it('publishes a scheduled task at once', async () => {
      const task = await client.sendTask({ name: 'later', delay: 60_000 });
      await expect(client.runNow(task.taskId)).resolves.toMatchObject({ status: 'queued' });
      expect(dispatched.map((t) => t.taskId)).toEqual([task.taskId]);
      expect(store.schedule.has(task.taskId)).toBe(false);
    });

    it('refuses a task that is not scheduled, and an unknown one', async () => {
      const task = await client.sendTask({ name: 'now' });
      await expect(client.runNow(task.taskId)).rejects.toThrow(
        `Cannot run now task ${task.taskId}: it is queued; only a scheduled task can be run now`,
      );
      const cancelled = await client.sendTask({ name: 'later', delay: 60_000 });
      await client.cancelTask(cancelled.taskId);
      await expect(client.runNow(cancelled.taskId)).rejects.toThrow(TaskStatusConflictError);
      await expect(client.runNow('nope')).rejects.toThrow(TaskNotFoundError);
    });
  });

  describe('retryTask', () => {
    /** Sends a task and records its attempts up to a final `failed` one, as a worker would. */
    async function failedTask(options: Partial<SendTaskOptions> = {}, attempts = 1) {
      const task = await client.sendTask({ name: 'flaky', payload: { n: 1 }, ...options });
      let current = dispatched[dispatched.length - 1];
      for (let attempt = 1; attempt <= attempts; attempt++) {
        const status = attempt === attempts ? 'failed' : 'retry';
        await store.record({
          taskId: current.taskId,
          status,
          at: new Date(),
          failError: 'boom',
          retry: options.retry ?? 0,
        });
        if (attempt < attempts) {
          current = {
            ...current,
            taskId: retryTaskId(task.taskId, attempt + 1),
            attempt: attempt + 1,
          };
          await store.record({
            taskId: current.taskId,
            status: 'queued',
            at: new Date(),
            task: current,
          });
        }
      }
      dispatched.length = 0;
      return { task, last: current };
    }

    it('publishes a new attempt of a failed task, with one more retry allowed', async () => {
      const { task, last } = await failedTask({ retry: 1, timeout: 5000 }, 2);
      const retried = await client.retryTask(task.taskId);
      expect(retried).toMatchObject({
        taskId: retryTaskId(task.taskId, 3),
        originalTaskId: task.taskId,
        attempt: 3,
        retry: 2,
        status: 'queued',
        payload: { n: 1 },
      });
      // Published as sent, settings included, through the one dispatch path.
      expect(dispatched).toEqual([
        expect.objectContaining({ taskId: retried.taskId, attempt: 3, retry: 2, timeout: 5000 }),
      ]);
      expect(dispatched[0].payload.body.toString()).toBe('{"n":1}');
      // The failed attempt keeps its record; the chain now ends with the new attempt.
      expect((await client.getTask(last.taskId))?.status).toBe('failed');
      expect((await client.getAttempts(task.taskId)).map((a) => a.status)).toEqual([
        'retry',
        'failed',
        'queued',
      ]);
    });

    it('accepts the id of any attempt, and retries a failure that had no retries at all', async () => {
      const { task } = await failedTask();
      await expect(client.retryTask(task.taskId)).resolves.toMatchObject({
        attempt: 2,
        retry: 1,
      });
    });

    it('refuses a task whose current attempt is not failed, and an unknown one', async () => {
      const running = await client.sendTask({ name: 'busy' });
      const refusal = client.retryTask(running.taskId);
      await expect(refusal).rejects.toThrow(TaskStatusConflictError);
      await expect(refusal).rejects.toThrow(
        `Cannot retry task ${running.taskId}: it is queued; only a failed task can be retried`,
      );
      const { task } = await failedTask();
      await client.retryTask(task.taskId);
      // The retry is now the current attempt, and it has not failed.
      await expect(client.retryTask(task.taskId)).rejects.toThrow(TaskStatusConflictError);
      await expect(client.retryTask('nope')).rejects.toThrow(TaskNotFoundError);
    });

    it('publishes once when two retries of one failure race', async () => {
      const { task } = await failedTask();
      const results = await Promise.allSettled([
        client.retryTask(task.taskId),
        client.retryTask(task.taskId),
      ]);
      expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
      expect(dispatched).toHaveLength(1);
    });
  });

  describe('while the broker is unreachable', () => {
    it('accepts tasks at once as initiated and publishes them in order when it returns', async () => {
      broker.connected = false;
      const sent = await client.sendTasks([{ name: 'a' }, { name: 'b' }, { name: 'c' }]);
      expect(sent.map((task) => task.status)).toEqual(['initiated', 'initiated', 'initiated']);
      expect(dispatched).toEqual([]);

      broker.reconnect();
      await waitFor(() => dispatched.length === 3);
      expect(dispatched.map((task) => task.name)).toEqual(['a', 'b', 'c']);
      await waitFor(async () => (await store.get(sent[2].taskId))?.status === 'queued');
    });

    it('rejects with OfflineBufferFullError once offlineBufferSize tasks wait', async () => {
      broker.connected = false;
      await client.sendTasks([{ name: 'a' }, { name: 'b' }, { name: 'c' }]);
      const refused = client.sendTask({ name: 'd' });
      await expect(refused).rejects.toThrow(OfflineBufferFullError);
      await expect(refused).rejects.toThrow(
        'RabbitMQ is unreachable and 3 tasks already wait for it (offlineBufferSize)',
      );
    });

    it('keeps new tasks behind those still waiting, so that order holds', async () => {
      broker.connected = false;
      await client.sendTask({ name: 'first' });
      broker.connected = true; // back, but the buffer has not drained yet
      const second = await client.sendTask({ name: 'second' });
      expect(second.status).toBe('initiated');
      await waitFor(() => dispatched.length === 2);
      expect(dispatched.map((task) => task.name)).toEqual(['first', 'second']);
    });
  });
});

/** Polls a condition of the fakes (they settle within a few ticks). */
async function waitFor(check: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error('condition not met');
}
