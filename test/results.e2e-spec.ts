import type { INestApplicationContext } from '@nestjs/common';
import type { Redis } from 'ioredis';
import {
  CogmanClient,
  TaskCancelledError,
  TaskFailedError,
  TaskHandler,
  TaskNotFoundError,
  TaskWaitTimeoutError,
  type CogmanTaskHandler,
  type TaskContext,
} from '@cogman/nestjs';
import { testHarness } from './support/harness';
import { openRedis } from './support/services';
import { deferred, waitFor } from './support/wait';

interface Echo {
  /** What to return: `{ buffer }` returns those bytes as a Buffer. */
  value?: unknown;
  buffer?: string;
  /** Fail the attempts before this one. */
  succeedOn?: number;
  /** Return a string of this many bytes. */
  size?: number;
}

@TaskHandler('echo', { retry: 2, backoff: { type: 'fixed', delay: 100 } })
class EchoHandler implements CogmanTaskHandler<Echo> {
  handle(payload: Echo, ctx: TaskContext) {
    if (ctx.task.attempt < (payload.succeedOn ?? 1)) {
      throw new Error(`attempt ${ctx.task.attempt} failed`);
    }
    if (payload.buffer !== undefined) return Buffer.from(payload.buffer);
    if (payload.size !== undefined) return 'x'.repeat(payload.size);
    return payload.value;
  }
}

let started = deferred();

@TaskHandler('long')
class LongHandler implements CogmanTaskHandler {
  async handle(_payload: unknown, ctx: TaskContext) {
    started.resolve();
    await new Promise((_, reject) =>
      ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error), {
        once: true,
      }),
    );
  }
}

describe('Task results and waitForResult', () => {
  const harness = testHarness();
  let app: INestApplicationContext;
  let client: CogmanClient;
  let redis: Redis;
  let namespace: string;

  beforeAll(async () => {
    namespace = harness.namespace('results');
    app = await harness.app({ namespace, resultMaxSize: 1024 }, [EchoHandler, LongHandler]);
    client = app.get(CogmanClient);
    redis = openRedis();
  });

  beforeEach(() => {
    started = deferred();
  });

  afterAll(async () => {
    redis?.disconnect();
    await harness.afterEach();
    await harness.afterAll();
  });

  it('records a JSON result with the success, and waitForResult resolves with it', async () => {
    const value = { total: 3, items: ['a', 'ü'], nested: { ok: true } };
    const task = await client.sendTask({ name: 'echo', payload: { value } });
    const record = await client.waitForResult(task.taskId, { timeout: 20_000 });
    expect(record).toMatchObject({ taskId: task.taskId, status: 'success', result: value });
    expect((await client.getTask(task.taskId))?.result).toEqual(value);
    const sent = await client.sendAndWait({ name: 'echo', payload: { value: 'at once' } });
    expect(sent).toMatchObject({ status: 'success', result: 'at once' });
  });

  it('records a Buffer result byte for byte', async () => {
    const task = await client.sendTask({ name: 'echo', payload: { buffer: 'raw \u0000 bytes' } });
    const record = await client.waitForResult(task.taskId, { timeout: 20_000 });
    expect(Buffer.isBuffer(record.result)).toBe(true);
    expect((record.result as Buffer).equals(Buffer.from('raw \u0000 bytes'))).toBe(true);
  });

  it('records no result for a handler that returns nothing, and a falsy one as it is', async () => {
    const none = await client.sendTask({ name: 'echo', payload: {} });
    const zero = await client.sendTask({ name: 'echo', payload: { value: 0 } });
    expect((await client.waitForResult(none.taskId, { timeout: 20_000 })).result).toBeUndefined();
    expect((await client.waitForResult(zero.taskId, { timeout: 20_000 })).result).toBe(0);
  });

  it('records a note instead of a result larger than resultMaxSize', async () => {
    const task = await client.sendTask({ name: 'echo', payload: { size: 2000 } });
    const record = await client.waitForResult(task.taskId, { timeout: 20_000 });
    expect(record.status).toBe('success');
    expect(record.result).toBeUndefined();
    expect(record.resultError).toMatch(/larger than resultMaxSize \(1024 bytes\)/);
  });

  it('follows two retries to the attempt that succeeds', async () => {
    const task = await client.sendTask({ name: 'echo', payload: { succeedOn: 3, value: 'third' } });
    const record = await client.waitForResult(task.taskId, { timeout: 20_000 });
    expect(record).toMatchObject({ attempt: 3, originalTaskId: task.taskId, result: 'third' });
    const attempts = await client.getAttempts(task.taskId);
    expect(attempts.map((a) => a.status)).toEqual(['retry', 'retry', 'success']);
  });

  it('rejects with TaskFailedError when the last attempt fails', async () => {
    const task = await client.sendTask({ name: 'echo', payload: { succeedOn: 9 } });
    const error = await client.waitForResult(task.taskId, { timeout: 20_000 }).catch((e) => e);
    expect(error).toBeInstanceOf(TaskFailedError);
    expect(error).toMatchObject({ failError: 'attempt 3 failed', record: { attempt: 3 } });
  });

  it('rejects with TaskCancelledError when the task is cancelled while it runs', async () => {
    const task = await client.sendTask({ name: 'long' });
    const waiting = client.waitForResult(task.taskId, { timeout: 20_000 }).catch((e) => e);
    await started.promise;
    await client.cancelTask(task.taskId);
    expect(await waiting).toBeInstanceOf(TaskCancelledError);
  });

  it('rejects after its timeout, and when its signal aborts', async () => {
    const task = await client.sendTask({ name: 'long' });
    await expect(client.waitForResult(task.taskId, { timeout: 200 })).rejects.toBeInstanceOf(
      TaskWaitTimeoutError,
    );
    const controller = new AbortController();
    const waiting = client.waitForResult(task.taskId, { signal: controller.signal });
    controller.abort(new Error('no longer needed'));
    await expect(waiting).rejects.toThrow('no longer needed');
    await client.cancelTask(task.taskId);
  });

  it('rejects with TaskNotFoundError for an unknown task', async () => {
    await expect(client.waitForResult('no-such-task', { timeout: 5000 })).rejects.toBeInstanceOf(
      TaskNotFoundError,
    );
  });

  it('resolves at once for a task that has finished already', async () => {
    const task = await client.sendTask({ name: 'echo', payload: { value: 'done' } });
    await waitFor(
      'its success',
      async () => (await client.getTask(task.taskId))?.status === 'success',
    );
    expect((await client.waitForResult(task.taskId, { timeout: 5000 })).result).toBe('done');
  });

  it('serves many concurrent waiters, several per task', async () => {
    const tasks = await client.sendTasks(
      Array.from({ length: 20 }, (_, i) => ({
        name: 'echo',
        payload: { value: i, succeedOn: i % 3 === 0 ? 2 : 1 },
      })),
    );
    const results = await Promise.all(
      tasks.flatMap((task) =>
        [1, 2, 3].map(() => client.waitForResult(task.taskId, { timeout: 30_000 })),
      ),
    );
    expect(results.map((record) => record.result)).toEqual(tasks.flatMap((_, i) => [i, i, i]));
  });

  it('publishes nothing for tasks nobody waits for', async () => {
    const subscriber = redis.duplicate();
    const published: string[] = [];
    try {
      await subscriber.subscribe(`cogman:{${namespace}}:results`);
      subscriber.on('message', (_channel: string, id: string) => published.push(id));
      const tasks = await client.sendTasks(
        Array.from({ length: 10 }, (_, i) => ({ name: 'echo', payload: { value: i } })),
      );
      await waitFor('every task to succeed', async () =>
        (await Promise.all(tasks.map((t) => client.getTask(t.taskId)))).every(
          (r) => r?.status === 'success',
        ),
      );
      // One that is waited for, published after the others: the channel is live.
      const waited = await client.sendTask({ name: 'long' });
      const waiting = client.waitForResult(waited.taskId).catch((e) => e);
      await started.promise;
      const key = `cogman:{${namespace}}:task:${waited.taskId}`;
      await waitFor(
        'the record to be flagged',
        async () => (await redis.hexists(key, 'waited')) === 1,
      );
      await client.cancelTask(waited.taskId);
      expect(await waiting).toBeInstanceOf(TaskCancelledError);
      await waitFor('the waited task on the channel', () => published.includes(waited.taskId));
      expect(published).toEqual([waited.taskId]);
      for (const task of tasks) {
        expect(await redis.hexists(`cogman:{${namespace}}:task:${task.taskId}`, 'waited')).toBe(0);
      }
    } finally {
      subscriber.disconnect();
    }
  });
});
