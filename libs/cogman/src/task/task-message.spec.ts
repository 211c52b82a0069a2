import type { ConsumeMessage } from 'amqplib';
import { buildTask } from './new-task';
import { retryTaskId } from './task-id';
import { decodePayload, fromDelivery, toMessage } from './task-message';

function asDelivery(content: Buffer, properties: object): ConsumeMessage {
  return { content, fields: {}, properties } as unknown as ConsumeMessage;
}

describe('task messages', () => {
  it('round-trips every field of a task through an AMQP message', () => {
    const task = buildTask({
      name: 'email',
      payload: { to: 'x@y.z' },
      priority: 'high',
      retry: 3,
      primaryKey: 'pk',
      headers: { traceparent: 't' },
    }).task;
    const { content, options } = toMessage(task);
    expect(options).toMatchObject({
      persistent: true,
      messageId: task.taskId,
      contentType: 'application/json',
      headers: { TaskName: 'email', TaskID: task.taskId, traceparent: 't' },
    });
    const decoded = fromDelivery(asDelivery(content, options), 'high');
    expect(decoded).toEqual({ ok: true, foreign: false, task });
    // Only the headers that say something: the first attempt of itself needs no more.
    expect(Object.keys(options.headers as object).sort()).toEqual(
      [
        'TaskID',
        'TaskName',
        'traceparent',
        'x-cogman-created-at',
        'x-cogman-primary-key',
        'x-cogman-retry',
      ].sort(),
    );
  });

  it('reads a Go Cogman message as a first attempt with a binary payload', () => {
    const decoded = fromDelivery(
      asDelivery(Buffer.from('{"Num1":1}'), {
        messageId: 'go-1',
        headers: { TaskName: 'add', TaskID: 'go-1' },
      }),
      'low',
    );
    expect(decoded).toMatchObject({
      ok: true,
      task: {
        taskId: 'go-1',
        originalTaskId: 'go-1',
        name: 'add',
        attempt: 1,
        primaryKey: null,
        headers: {},
      },
    });
    if (decoded.ok) expect(decodePayload(decoded.task.payload)).toEqual(Buffer.from('{"Num1":1}'));
    // No retry, timeout or backoff given: the handler's settings apply.
    expect(decoded.ok && [decoded.task.retry, decoded.task.timeout, decoded.task.backoff]).toEqual([
      undefined,
      undefined,
      undefined,
    ]);
  });

  it('carries retry, timeout and backoff given at send time', () => {
    const { task } = buildTask({
      name: 'x',
      retry: 2,
      timeout: 5000,
      backoff: { type: 'fixed', delay: 10 },
    });
    const { content, options } = toMessage(task);
    const decoded = fromDelivery(asDelivery(content, options), 'low');
    expect(decoded.ok && decoded.task).toMatchObject({
      retry: 2,
      timeout: 5000,
      backoff: { type: 'fixed', delay: 10 },
    });
  });

  it('falls back to the message id when there is no TaskID header', () => {
    const decoded = fromDelivery(
      asDelivery(Buffer.alloc(0), { messageId: 'm-1', headers: { TaskName: 'x' } }),
      'low',
    );
    expect(decoded.ok && decoded.task.taskId).toBe('m-1');
  });
});

describe('retry task ids', () => {
  it('are UUIDs, stable for one attempt and distinct across attempts and tasks', () => {
    const a2 = retryTaskId('task-a', 2);
    expect(a2).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(retryTaskId('task-a', 2)).toBe(a2);
    expect(retryTaskId('task-a', 3)).not.toBe(a2);
    expect(retryTaskId('task-b', 2)).not.toBe(a2);
  });
});
