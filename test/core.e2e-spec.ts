import type { INestApplicationContext } from '@nestjs/common';
import { Inject, Injectable, Scope } from '@nestjs/common';
import { REQUEST } from '@nestjs/core';
import {
  CogmanClient,
  CogmanWorker,
  TaskHandler,
  type CogmanTaskHandler,
  type TaskContext,
  type TaskInfo,
  type TaskRecord,
} from '@cogman/nestjs';
import { startApp } from './support/app';
import { cleanUp, openAmqp, queueNames, uniqueNamespace } from './support/services';
import { waitFor } from './support/wait';

const HIGH_QUEUES = 3;
const LOW_QUEUES = 3;
const namespace = uniqueNamespace('core');

/** Every attempt a handler ran, in order. */
const runs: { task: TaskInfo; payload: unknown }[] = [];
const runsOf = (taskId: string) => runs.filter((run) => run.task.taskId === taskId);

@TaskHandler('count')
class CountHandler implements CogmanTaskHandler<{ n: number }> {
  handle(payload: { n: number }, ctx: TaskContext) {
    runs.push({ task: ctx.task, payload });
  }
}

@TaskHandler('echo')
class EchoHandler implements CogmanTaskHandler {
  handle(payload: unknown, ctx: TaskContext) {
    runs.push({ task: ctx.task, payload });
  }
}

/** Fails until the attempt given in the payload, then succeeds. */
@TaskHandler('flaky')
class FlakyHandler implements CogmanTaskHandler<{ succeedOnAttempt: number }> {
  handle(payload: { succeedOnAttempt: number }, ctx: TaskContext) {
    runs.push({ task: ctx.task, payload });
    if (ctx.task.attempt < payload.succeedOnAttempt) {
      throw new Error(`attempt ${ctx.task.attempt} failed`);
    }
  }
}

/** Request-scoped: a new instance per task, which can inject the task as REQUEST. */
@Injectable({ scope: Scope.REQUEST })
class PerTaskState {
  constructor(@Inject(REQUEST) readonly task: TaskInfo) {}
}

@TaskHandler('scoped')
class ScopedHandler implements CogmanTaskHandler {
  private static instances = new Set<ScopedHandler>();
  constructor(private readonly state: PerTaskState) {}

  handle(payload: unknown, ctx: TaskContext) {
    ScopedHandler.instances.add(this);
    runs.push({
      task: ctx.task,
      payload: { seenId: this.state.task.taskId, instances: ScopedHandler.instances.size },
    });
  }
}

describe('Cogman core: sending, processing and the Redis log', () => {
  let app: INestApplicationContext;
  let client: CogmanClient;

  beforeAll(async () => {
    app = await startApp(
      { namespace, highPriorityQueueCount: HIGH_QUEUES, lowPriorityQueueCount: LOW_QUEUES },
      [CountHandler, EchoHandler, FlakyHandler, ScopedHandler, PerTaskState],
    );
    client = app.get(CogmanClient);
  });

  afterAll(async () => {
    await app?.close();
    await cleanUp(namespace, HIGH_QUEUES, LOW_QUEUES);
  });

  it('processes thousands of tasks of both priorities exactly once, each recorded success', async () => {
    const total = 3000;
    const sent = await Promise.all(
      Array.from({ length: total }, (_, n) =>
        client.sendTask({ name: 'count', payload: { n }, priority: n % 2 ? 'high' : 'low' }),
      ),
    );
    expect(new Set(sent.map((task) => task.taskId)).size).toBe(total);
    expect(sent.every((task) => task.status === 'queued')).toBe(true);

    const ids = new Set(sent.map((task) => task.taskId));
    await waitFor(
      'every task to run',
      () => runs.filter((run) => ids.has(run.task.taskId)).length >= total,
      {
        timeout: 90_000,
      },
    );
    const records = await waitFor('every record to be success', async () => {
      const all = await Promise.all(sent.map((task) => client.getTask(task.taskId)));
      return all.every((record) => record?.status === 'success') ? all : null;
    });

    // Nothing left in any queue, and no task ran twice.
    const amqp = await openAmqp();
    const channel = await amqp.createChannel();
    const names = queueNames(namespace, HIGH_QUEUES, LOW_QUEUES);
    for (const queue of [...names.high, ...names.low, names.deadLetter]) {
      expect((await channel.checkQueue(queue)).messageCount).toBe(0);
    }
    await amqp.close();
    const counts = new Map<string, number>();
    for (const run of runs)
      if (ids.has(run.task.taskId))
        counts.set(run.task.taskId, (counts.get(run.task.taskId) ?? 0) + 1);
    expect([...counts.values()].every((count) => count === 1)).toBe(true);
    expect(counts.size).toBe(total);

    for (const [i, record] of records.entries()) {
      expect(record).toMatchObject({
        taskId: sent[i].taskId,
        name: 'count',
        originalTaskId: sent[i].taskId,
        attempt: 1,
        retry: 0,
        status: 'success',
        failError: null,
        priority: i % 2 ? 'high' : 'low',
        payload: { n: i },
      });
      expect(record!.duration).toEqual(expect.any(Number));
      expect(record!.updatedAt.getTime()).toBeGreaterThanOrEqual(record!.createdAt.getTime());
    }
  });

  it('retries a failed task as new attempts of the same task until it succeeds', async () => {
    const task = await client.sendTask({
      name: 'flaky',
      payload: { succeedOnAttempt: 3 },
      retry: 5,
      backoff: { type: 'fixed', delay: 0 },
      primaryKey: 'order-17',
      priority: 'high',
    });
    const attempts = await waitFor('three attempts', () => {
      const chain = runs.filter((run) => run.task.originalTaskId === task.taskId);
      return chain.length >= 3 ? chain : null;
    });
    const records = await waitFor('the third attempt to succeed', async () => {
      const all = await Promise.all(attempts.map((run) => client.getTask(run.task.taskId)));
      return all[2]?.status === 'success' ? all : null;
    });
    expect(records.map((record) => [record!.attempt, record!.status])).toEqual([
      [1, 'retry'],
      [2, 'retry'],
      [3, 'success'],
    ]);
    expect(records[0]!.failError).toBe('attempt 1 failed');
    expect(records[1]!.failError).toBe('attempt 2 failed');
    expect(new Set(records.map((record) => record!.taskId)).size).toBe(3);
    // The chain is found from any of its attempts.
    const chain = await client.getAttempts(attempts[1].task.taskId);
    expect(chain.map((record) => record.taskId)).toEqual(records.map((record) => record!.taskId));
    for (const record of records) {
      expect(record).toMatchObject({
        originalTaskId: task.taskId,
        primaryKey: 'order-17',
        retry: 5,
        priority: 'high',
        payload: { succeedOnAttempt: 3 },
      });
    }
  });

  it('records the last failure as failed with the error text once retries run out', async () => {
    const task = await client.sendTask({
      name: 'flaky',
      payload: { succeedOnAttempt: 99 },
      retry: 2,
      backoff: { type: 'fixed', delay: 0 },
    });
    const records = await waitFor('the last attempt to fail', async () => {
      const chain = runs.filter((run) => run.task.originalTaskId === task.taskId);
      if (chain.length < 3) return null;
      const all = await Promise.all(chain.map((run) => client.getTask(run.task.taskId)));
      return all[2]?.status === 'failed' ? all : null;
    });
    expect(records.map((record) => record!.status)).toEqual(['retry', 'retry', 'failed']);
    expect(records[2]!.failError).toBe('attempt 3 failed');
    // No fourth attempt: the chain is exactly retry + 1 long.
    const amqp = await openAmqp();
    const channel = await amqp.createChannel();
    for (const queue of queueNames(namespace, HIGH_QUEUES, LOW_QUEUES).low) {
      expect((await channel.checkQueue(queue)).messageCount).toBe(0);
    }
    await amqp.close();
    expect(runs.filter((run) => run.task.originalTaskId === task.taskId)).toHaveLength(3);
  });

  it('delivers JSON payloads equal and Buffers byte for byte', async () => {
    const everyByte = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const payloads: unknown[] = [
      { nested: { list: [1, 'two', { three: 3 }], unicode: 'zażółć 🐇', nil: null }, flag: true },
      [1, 2, 3],
      'a string',
      42.5,
      null,
      false,
      everyByte,
      Buffer.alloc(0),
    ];
    const sent = await Promise.all(
      payloads.map((payload) => client.sendTask({ name: 'echo', payload })),
    );
    for (const [i, task] of sent.entries()) {
      const [run] = await waitFor(`payload ${i} to arrive`, () => {
        const found = runsOf(task.taskId);
        return found.length ? found : null;
      });
      if (Buffer.isBuffer(payloads[i])) {
        expect(Buffer.isBuffer(run.payload)).toBe(true);
        expect((run.payload as Buffer).equals(payloads[i])).toBe(true);
      } else {
        expect(run.payload).toEqual(payloads[i]);
      }
      const record = await waitFor('the record', async () => {
        const found = await client.getTask(task.taskId);
        return found?.status === 'success' ? found : null;
      });
      if (Buffer.isBuffer(payloads[i])) {
        expect((record.payload as Buffer).equals(payloads[i])).toBe(true);
      } else {
        expect(record.payload).toEqual(payloads[i]);
      }
    }
  });

  it('passes custom headers and the task to the handler', async () => {
    const task = await client.sendTask({
      name: 'echo',
      payload: {},
      primaryKey: 'pk-1',
      headers: { traceparent: '00-abc-def-01' },
      priority: 'high',
    });
    const [run] = await waitFor('the task to run', () => {
      const found = runsOf(task.taskId);
      return found.length ? found : null;
    });
    expect(run.task).toMatchObject({
      taskId: task.taskId,
      name: 'echo',
      attempt: 1,
      priority: 'high',
      primaryKey: 'pk-1',
      headers: { traceparent: '00-abc-def-01' },
    });
  });

  it('resolves request-scoped handlers per task, with the task as REQUEST', async () => {
    const sent = await Promise.all([1, 2].map(() => client.sendTask({ name: 'scoped' })));
    const seen = await Promise.all(
      sent.map((task) =>
        waitFor('the scoped task to run', () => {
          const found = runsOf(task.taskId);
          return found.length ? (found[0].payload as { seenId: string; instances: number }) : null;
        }),
      ),
    );
    expect(seen.map((s) => s.seenId)).toEqual(sent.map((task) => task.taskId));
    expect(Math.max(...seen.map((s) => s.instances))).toBe(2);
  });

  it('runs handlers registered in code, like the Go server.Register', async () => {
    const worker = app.get(CogmanWorker);
    const got: unknown[] = [];
    worker.register('programmatic', (payload: unknown) => {
      got.push(payload);
    });
    expect(worker.handlers).toContain('programmatic');
    const task = await client.sendTask({ name: 'programmatic', payload: { hello: 'go' } });
    const record: TaskRecord | null = await waitFor('the task to succeed', async () => {
      const found = await client.getTask(task.taskId);
      return found?.status === 'success' ? found : null;
    });
    expect(record?.status).toBe('success');
    expect(got).toEqual([{ hello: 'go' }]);
  });

  it('returns null for a task it does not know', async () => {
    await expect(client.getTask('00000000-0000-4000-8000-000000000000')).resolves.toBeNull();
  });
});
