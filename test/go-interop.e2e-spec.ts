import type { INestApplicationContext } from '@nestjs/common';
import type { ChannelModel } from 'amqplib';
import { randomUUID } from 'node:crypto';
import {
  CogmanClient,
  TaskHandler,
  type CogmanTaskHandler,
  type TaskContext,
} from '@cogman/nestjs';
import { startApp } from './support/app';
import { redisKeys } from '../libs/cogman/src/store/redis-keys';
import { cleanUp, openAmqp, openRedis, queueNames, uniqueNamespace } from './support/services';
import { waitFor } from './support/wait';

const namespace = uniqueNamespace('go');
const queues = queueNames(namespace, 2, 2);
const received: { payload: unknown; ctx: TaskContext }[] = [];

@TaskHandler('add_num')
class AddNumHandler implements CogmanTaskHandler {
  handle(payload: unknown, ctx: TaskContext) {
    received.push({ payload, ctx });
  }
}

/** Takes JSON whoever sent it: a Go producer's bytes arrive parsed, as a Node producer's do. */
@TaskHandler('add_num_json', { payload: 'json' })
class AddNumJsonHandler implements CogmanTaskHandler<{ Num1: number; Num2: number }> {
  handle(payload: { Num1: number; Num2: number }, ctx: TaskContext) {
    received.push({ payload, ctx });
  }
}

describe('Interoperability with the Go Cogman library', () => {
  let app: INestApplicationContext;
  let amqp: ChannelModel;

  beforeAll(async () => {
    app = await startApp({ namespace, highPriorityQueueCount: 2, lowPriorityQueueCount: 2 }, [
      AddNumHandler,
      AddNumJsonHandler,
    ]);
    amqp = await openAmqp();
  });

  afterAll(async () => {
    await amqp?.close();
    await app?.close();
    await cleanUp(namespace, 2, 2);
  });

  it('declares the queues exactly as the Go library does, so its declarations are accepted', async () => {
    const channel = await amqp.createChannel();
    // A different argument would close the channel with 406 PRECONDITION_FAILED.
    for (const queue of queues.high) {
      await channel.assertQueue(queue, { durable: true, arguments: { 'x-queue-mode': 'default' } });
    }
    for (const queue of queues.low) {
      await channel.assertQueue(queue, { durable: true, arguments: { 'x-queue-mode': 'lazy' } });
    }
    await channel.close();
  });

  it('runs a task published the way a Go Cogman producer publishes it', async () => {
    const taskId = randomUUID();
    const body = Buffer.from(JSON.stringify({ Num1: 4, Num2: 6 }));
    const channel = await amqp.createConfirmChannel();
    // Go: default exchange, routing key = queue, persistent, TaskName/TaskID headers,
    // MessageId = TaskID, raw payload bytes, no content type.
    channel.publish('', queues.high[1], body, {
      deliveryMode: 2,
      messageId: taskId,
      headers: { TaskName: 'add_num', TaskID: taskId },
    });
    await channel.waitForConfirms();
    await channel.close();

    const run = await waitFor('the Go task to run', () =>
      received.find((r) => r.ctx.task.taskId === taskId),
    );
    expect(Buffer.isBuffer(run.payload)).toBe(true);
    expect((run.payload as Buffer).equals(body)).toBe(true);
    expect(run.ctx.task).toMatchObject({
      name: 'add_num',
      attempt: 1,
      retry: 0,
      priority: 'high',
      originalTaskId: taskId,
    });

    const client = app.get(CogmanClient);
    const record = await waitFor('its record', async () => {
      const found = await client.getTask(taskId);
      return found?.status === 'success' ? found : null;
    });
    expect(record).toMatchObject({ taskId, name: 'add_num', priority: 'high', attempt: 1 });
    expect((record.payload as Buffer).equals(body)).toBe(true);
  });

  it("keeps its task log apart from a Go Cogman's Redis records: they share no key", async () => {
    // A Go producer writes its record as one JSON string under the bare task id (Go field names),
    // then publishes. Cogman's record is a hash under its namespace's hash tag, and the Go
    // record is left as it was, so the hash tag changes nothing for a Go Cogman beside it.
    const redis = openRedis();
    const taskId = randomUUID();
    const goRecord = JSON.stringify({
      TaskID: taskId,
      Name: 'add_num',
      Status: 'queued',
      Retry: 0,
    });
    try {
      await redis.set(taskId, goRecord, 'PX', 60_000);
      const channel = await amqp.createConfirmChannel();
      channel.publish('', queues.low[0], Buffer.from('{}'), {
        deliveryMode: 2,
        messageId: taskId,
        headers: { TaskName: 'add_num', TaskID: taskId },
      });
      await channel.waitForConfirms();
      await channel.close();
      const client = app.get(CogmanClient);
      await waitFor(
        'the Go task to succeed',
        async () => (await client.getTask(taskId))?.status === 'success',
      );
      const key = redisKeys(namespace).task(taskId);
      expect(key).toBe(`cogman:{${namespace}}:task:${taskId}`);
      expect(await redis.type(key)).toBe('hash');
      expect(await redis.hget(key, 'status')).toBe('success');
      expect(await redis.get(taskId)).toBe(goRecord);
      // The default namespace's keys have a tag of their own, never a bare id either.
      expect(redisKeys('').task(taskId)).toBe(`{cogman}:task:${taskId}`);
    } finally {
      await redis.del(taskId);
      redis.disconnect();
    }
  });

  it("gives a handler with { payload: 'json' } a Go producer's JSON parsed, as a Node producer's", async () => {
    const goId = randomUUID();
    const channel = await amqp.createConfirmChannel();
    channel.publish('', queues.low[0], Buffer.from('{"Num1":1,"Num2":2}'), {
      deliveryMode: 2,
      messageId: goId,
      headers: { TaskName: 'add_num_json', TaskID: goId },
    });
    await channel.waitForConfirms();
    await channel.close();
    const node = await app
      .get(CogmanClient)
      .sendTask({ name: 'add_num_json', payload: { Num1: 3, Num2: 4 } });

    const runs = await waitFor('both tasks to run', () => {
      const go = received.find((r) => r.ctx.task.taskId === goId);
      const fromNode = received.find((r) => r.ctx.task.taskId === node.taskId);
      return go && fromNode && [go.payload, fromNode.payload];
    });
    expect(runs).toEqual([
      { Num1: 1, Num2: 2 },
      { Num1: 3, Num2: 4 },
    ]);
  });

  it('publishes messages a Go worker can read: TaskName and TaskID headers, message id, persistent', async () => {
    // A producer-only app in a namespace no worker consumes, so the message stays in its queue.
    const isolated = uniqueNamespace('go-producer');
    const producer = await startApp({ namespace: isolated, startWorker: false });
    try {
      const task = await producer
        .get(CogmanClient)
        .sendTask({ name: 'add_num', payload: { Num1: 1, Num2: 2 } });
      const channel = await amqp.createChannel();
      const message = await waitFor('the message', async () =>
        channel.get(queueNames(isolated).low[0], { noAck: true }),
      );
      expect(message.properties.headers).toMatchObject({
        TaskName: 'add_num',
        TaskID: task.taskId,
      });
      expect(message.properties.messageId).toBe(task.taskId);
      expect(message.properties.deliveryMode).toBe(2);
      expect(JSON.parse(message.content.toString())).toEqual({ Num1: 1, Num2: 2 });
      await channel.close();
    } finally {
      await producer.close();
      await cleanUp(isolated);
    }
  });
});
