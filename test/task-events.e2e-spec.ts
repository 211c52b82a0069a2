import { Injectable, type INestApplicationContext } from '@nestjs/common';
import type { ConfirmChannel, ChannelModel } from 'amqplib';
import {
  CogmanClient,
  CogmanWorker,
  OnTaskEvent,
  TaskHandler,
  type CogmanTaskHandler,
  type TaskEvent,
  type TaskContext,
  type TaskEventType,
} from '@cogman/nestjs';
import { startApp } from './support/app';
import { CapturedLogs } from './support/logs';
import { cleanUp, openAmqp, queueNames, uniqueNamespace } from './support/services';
import { waitFor } from './support/wait';

const seen: TaskEvent[] = [];
/** Calls of the listener that always throws, by event type. */
const thrown: TaskEventType[] = [];

/** Fails while `attempt` is below `payload.succeedOn`; returns `payload.result`. */
@TaskHandler('flaky', { retry: 2, backoff: { type: 'fixed', delay: 0 } })
class Flaky implements CogmanTaskHandler<{ succeedOn: number; result?: unknown }> {
  handle(payload: { succeedOn: number; result?: unknown }, ctx: TaskContext) {
    if (ctx.task.attempt < payload.succeedOn) throw new Error(`attempt ${ctx.task.attempt} failed`);
    return payload.result;
  }
}

/** Runs until cancelled. */
@TaskHandler('long')
class Long implements CogmanTaskHandler {
  async handle(_payload: unknown, ctx: TaskContext) {
    await new Promise((_, reject) =>
      ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error), {
        once: true,
      }),
    );
  }
}

@Injectable()
class Recorder {
  @OnTaskEvent(['started', 'completed', 'failed', 'retrying', 'cancelled', 'dead-lettered'])
  record(event: TaskEvent) {
    seen.push(event);
  }
}

/** Throws (or rejects) on every event: nothing of the tasks may change. */
@Injectable()
class Thrower {
  @OnTaskEvent(['started', 'completed', 'failed', 'retrying', 'cancelled', 'dead-lettered'])
  fail(event: TaskEvent) {
    thrown.push(event.type);
    throw new Error(`listener refuses ${event.type}`);
  }

  @OnTaskEvent('completed')
  async reject(event: TaskEvent) {
    await Promise.resolve();
    throw new Error(`async listener refuses ${event.type}`);
  }
}

/** Listens to the events of the `long` task only. */
@Injectable()
class LongOnly {
  readonly names: string[] = [];

  @OnTaskEvent('started', { name: 'long' })
  started(event: TaskEvent) {
    this.names.push(event.task!.name);
  }
}

describe('Task lifecycle events in the worker process', () => {
  let app: INestApplicationContext;
  let client: CogmanClient;
  let amqp: ChannelModel;
  let channel: ConfirmChannel;
  const logs = new CapturedLogs();
  const namespace = uniqueNamespace('events');

  beforeAll(async () => {
    app = await startApp({ namespace }, [Flaky, Long, Recorder, Thrower, LongOnly], {
      logger: logs,
    });
    client = app.get(CogmanClient);
    amqp = await openAmqp();
    channel = await amqp.createConfirmChannel();
  });

  beforeEach(() => {
    seen.length = 0;
    thrown.length = 0;
  });

  afterAll(async () => {
    await app?.close();
    await amqp?.close();
    await cleanUp(namespace);
  });

  /**
   * The events of a task, attempt by attempt (in order within an attempt: the next attempt may
   * start before the `retrying` of the one before reaches the listeners).
   */
  const eventsOf = (originalTaskId: string, events = seen) =>
    events
      .filter((event) => event.task?.originalTaskId === originalTaskId)
      .sort((a, b) => a.task!.attempt - b.task!.attempt)
      .map((e) => e.type);

  it('tells started and completed, with the result, although a listener throws', async () => {
    const task = await client.sendTask({ name: 'flaky', payload: { succeedOn: 1, result: 42 } });
    await waitFor('completed', () => eventsOf(task.taskId).length === 2);
    expect(eventsOf(task.taskId)).toEqual(['started', 'completed']);
    expect(seen.find((e) => e.type === 'completed')).toMatchObject({
      task: { taskId: task.taskId, name: 'flaky', attempt: 1 },
      result: 42,
      duration: expect.any(Number),
    });
    expect((await client.getTask(task.taskId))?.status).toBe('success');
    await waitFor('the errors to be logged', () =>
      logs.find('error', `failed for task ${task.taskId}`).length >= 3 ? true : null,
    );
    expect(logs.find('error', `Thrower.fail failed for task ${task.taskId}`)).toHaveLength(2);
    expect(logs.find('error', `Thrower.reject failed for task ${task.taskId}`)).toHaveLength(1);
  });

  it('tells retrying then failed, and the retries still happen', async () => {
    const task = await client.sendTask({ name: 'flaky', payload: { succeedOn: 9 } });
    // The outcome events of one attempt may reach the listeners after those of the next.
    await waitFor('the six events', () => eventsOf(task.taskId).length === 6);
    expect(eventsOf(task.taskId)).toEqual([
      'started',
      'retrying',
      'started',
      'retrying',
      'started',
      'failed',
    ]);
    const retrying = seen.find((e) => e.type === 'retrying');
    expect(retrying).toMatchObject({ nextTaskId: expect.any(String), wait: 0 });
    expect((retrying as { error: Error }).error.message).toBe('attempt 1 failed');
    const attempts = await client.getAttempts(task.taskId);
    expect(attempts.map((a) => a.status)).toEqual(['retry', 'retry', 'failed']);
    expect(thrown.filter((type) => type === 'retrying')).toHaveLength(2);
  });

  it('tells cancelled for a task cancelled while it runs', async () => {
    const task = await client.sendTask({ name: 'long' });
    await waitFor('started', () => eventsOf(task.taskId).includes('started'));
    await client.cancelTask(task.taskId);
    await waitFor('cancelled', () => eventsOf(task.taskId).includes('cancelled'));
    expect(eventsOf(task.taskId)).toEqual(['started', 'cancelled']);
    expect((await client.getTask(task.taskId))?.status).toBe('cancelled');
    expect(app.get(LongOnly).names).toContain('long');
    expect(app.get(LongOnly).names.every((name) => name === 'long')).toBe(true);
  });

  it('tells dead-lettered for a message that cannot run', async () => {
    channel.publish('', queueNames(namespace).low[0], Buffer.from('{not json'), {
      persistent: true,
      messageId: `${namespace}-bad`,
      contentType: 'application/json',
      headers: { TaskName: 'flaky', TaskID: `${namespace}-bad` },
    });
    await channel.waitForConfirms();
    const event = await waitFor('dead-lettered', () =>
      seen.find((e) => e.type === 'dead-lettered'),
    );
    expect(event).toMatchObject({
      type: 'dead-lettered',
      taskId: `${namespace}-bad`,
      reason: 'undecodable_payload',
      task: { name: 'flaky' },
    });
    expect(thrown).toContain('dead-lettered');
  });

  it('streams the same events on CogmanWorker.events$', async () => {
    const streamed: TaskEvent[] = [];
    const subscription = app.get(CogmanWorker).events$.subscribe((event) => streamed.push(event));
    try {
      const task = await client.sendTask({ name: 'flaky', payload: { succeedOn: 2, result: 'x' } });
      await waitFor(
        'the four events on the stream',
        () => eventsOf(task.taskId, streamed).length === 4,
      );
      expect(eventsOf(task.taskId, streamed)).toEqual([
        'started',
        'retrying',
        'started',
        'completed',
      ]);
    } finally {
      subscription.unsubscribe();
    }
  });
});
