import { Injectable } from '@nestjs/common';
import {
  CogmanClient,
  OnTaskEvent,
  TaskHandler,
  TaskInvalidError,
  type CogmanTaskHandler,
  type TaskContext,
  type TaskEvent,
} from '@cogman/nestjs';
import { TASK_LOG_STORE, type TaskLogStore } from '../libs/cogman/src/store/task-log.store';
import { call, startHttpApp, type HttpApp } from './support/http';
import { cleanUp, uniqueNamespace } from './support/services';
import { deferred, waitFor } from './support/wait';

const PROGRESS_INTERVAL = 200;

let gate = deferred();
let reported = deferred();
const progressEvents: unknown[] = [];
let refused: unknown;

/** Reports 42 and a JSON object, then waits for the gate; reports 100 and returns. */
@TaskHandler('steps')
class StepsHandler implements CogmanTaskHandler {
  async handle(_payload: unknown, ctx: TaskContext) {
    ctx.progress(42);
    ctx.progress({ step: 'copy', done: 3, of: 7 });
    reported.resolve();
    await gate.promise;
    ctx.progress(100);
  }
}

/** Reports as fast as it can for a while: the writes are throttled. */
@TaskHandler('chatty')
class ChattyHandler implements CogmanTaskHandler {
  async handle(_payload: unknown, ctx: TaskContext) {
    const end = Date.now() + 5 * PROGRESS_INTERVAL;
    let i = 0;
    while (Date.now() < end) {
      ctx.progress(Math.min(99, i++ / 10));
      await new Promise((resolve) => setImmediate(resolve));
    }
    ctx.progress(99.5);
  }
}

@TaskHandler('bad-progress')
class BadProgressHandler implements CogmanTaskHandler {
  handle(_payload: unknown, ctx: TaskContext) {
    try {
      ctx.progress(101);
    } catch (error) {
      refused = error;
    }
  }
}

@Injectable()
class ProgressListeners {
  @OnTaskEvent('progress', { name: 'steps' })
  seen(event: TaskEvent) {
    if (event.type === 'progress') progressEvents.push(event.progress);
  }

  @OnTaskEvent('progress')
  refuse() {
    throw new Error('a listener that throws');
  }
}

describe('Task progress', () => {
  let http: HttpApp;
  let client: CogmanClient;
  const namespace = uniqueNamespace('progress');
  /** Task id → progress values written to the store (outcome included). */
  const written = new Map<string, string[]>();

  beforeAll(async () => {
    http = await startHttpApp(
      { namespace, progressInterval: PROGRESS_INTERVAL },
      { providers: [StepsHandler, ChattyHandler, BadProgressHandler, ProgressListeners] },
    );
    client = http.app.get(CogmanClient);
    const store = http.app.get<TaskLogStore>(TASK_LOG_STORE, { strict: false });
    const record = store.record.bind(store);
    store.record = (change) => {
      if (change.progress !== undefined) {
        written.set(change.taskId, [...(written.get(change.taskId) ?? []), change.progress]);
      }
      return record(change);
    };
  });

  beforeEach(() => {
    gate = deferred();
    reported = deferred();
    progressEvents.length = 0;
  });

  afterAll(async () => {
    gate.resolve();
    await http?.app.close();
    await cleanUp(namespace);
  });

  it('shows the last progress of a running task through getTask and REST, and as events', async () => {
    const task = await client.sendTask({ name: 'steps' });
    await reported.promise;
    const running = await waitFor('the progress object in the record', async () => {
      const record = await client.getTask(task.taskId);
      return (record?.progress as { step?: string } | undefined)?.step === 'copy' ? record : null;
    });
    expect(running.status).toBe('in_progress');
    expect(running.progress).toEqual({ step: 'copy', done: 3, of: 7 });
    const shown = (await call(`${http.api}/tasks/${task.taskId}`)).body.task;
    expect(shown).toMatchObject({ status: 'in_progress', progress: { step: 'copy' } });
    // 42 was written at once; the object, reported within the interval, at its end.
    expect(written.get(task.taskId)).toEqual(['42', '{"step":"copy","done":3,"of":7}']);

    gate.resolve();
    const done = await client.waitForResult(task.taskId, { timeout: 20_000 });
    expect(done.progress).toBe(100);
    expect(progressEvents).toEqual([42, { step: 'copy', done: 3, of: 7 }, 100]);
  });

  it('writes at most one progress per interval, and the last value always', async () => {
    const task = await client.sendTask({ name: 'chatty' });
    const done = await client.waitForResult(task.taskId, { timeout: 20_000 });
    expect(done.status).toBe('success');
    expect(done.progress).toBe(99.5);
    const writes = written.get(task.taskId)!;
    // The handler ran five intervals: about six writes, however many calls it made.
    expect(writes.length).toBeGreaterThanOrEqual(2);
    expect(writes.length).toBeLessThanOrEqual(Math.ceil(done.duration! / PROGRESS_INTERVAL) + 2);
    expect(writes[writes.length - 1]).toBe('99.5');
  });

  it('refuses a value that is not 0-100 or a JSON object, in the handler', async () => {
    const task = await client.sendTask({ name: 'bad-progress' });
    const done = await client.waitForResult(task.taskId, { timeout: 20_000 });
    expect(refused).toBeInstanceOf(TaskInvalidError);
    expect(done.progress).toBeUndefined();
  });
});
