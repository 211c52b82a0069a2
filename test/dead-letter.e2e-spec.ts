import type { INestApplicationContext } from '@nestjs/common';
import type { ChannelModel, ConfirmChannel, GetMessage } from 'amqplib';
import {
  CogmanClient,
  DEAD_LETTER_HEADERS,
  TaskHandler,
  type CogmanTaskHandler,
} from '@cogman/nestjs';
import { startApp } from './support/app';
import { cleanUp, openAmqp, queueNames, uniqueNamespace } from './support/services';
import { waitFor } from './support/wait';

const namespace = uniqueNamespace('dlq');
const queues = queueNames(namespace);
const handled: unknown[] = [];

@TaskHandler('known')
class KnownHandler implements CogmanTaskHandler {
  handle(payload: unknown) {
    handled.push(payload);
  }
}

describe('Messages that cannot be run go to the dead-letter queue', () => {
  let app: INestApplicationContext;
  let amqp: ChannelModel;
  let channel: ConfirmChannel;

  beforeAll(async () => {
    // A task no worker handles is dead-lettered at once (without the grace period of a rolling
    // deploy, which test/rolling-deploy.e2e-spec.ts covers).
    app = await startApp({ namespace, unknownTaskGracePeriod: 0 }, [KnownHandler]);
    amqp = await openAmqp();
    channel = await amqp.createConfirmChannel();
  });

  afterAll(async () => {
    await amqp?.close();
    await app?.close();
    await cleanUp(namespace);
  });

  async function publishRaw(content: Buffer, options: Parameters<ConfirmChannel['publish']>[3]) {
    channel.publish('', queues.low[0], content, { persistent: true, ...options });
    await channel.waitForConfirms();
  }

  async function nextDeadLetter(): Promise<GetMessage> {
    return waitFor('a dead-lettered message', async () =>
      channel.get(queues.deadLetter, { noAck: true }),
    );
  }

  it.each([
    {
      kind: 'no TaskName header',
      reason: 'missing_task_name',
      content: Buffer.from('{}'),
      options: { messageId: 'dlq-no-name', headers: { TaskID: 'dlq-no-name' } },
    },
    {
      kind: 'no task id at all',
      reason: 'missing_task_id',
      content: Buffer.from('{}'),
      options: { headers: { TaskName: 'known' } },
    },
    {
      kind: 'a task no worker handles',
      reason: 'unknown_task',
      content: Buffer.from('{"a":1}'),
      options: {
        messageId: 'dlq-unknown',
        contentType: 'application/json',
        headers: { TaskName: 'nobody-handles-this', TaskID: 'dlq-unknown' },
      },
    },
    {
      kind: 'a JSON payload that does not parse',
      reason: 'undecodable_payload',
      content: Buffer.from('{not json'),
      options: {
        messageId: 'dlq-bad-json',
        contentType: 'application/json',
        headers: { TaskName: 'known', TaskID: 'dlq-bad-json' },
      },
    },
  ])(
    'dead-letters $kind with the reason, once, and keeps working',
    async ({ reason, content, options }) => {
      await publishRaw(content, options);
      const message = await nextDeadLetter();
      const headers = message.properties.headers ?? {};
      expect(headers[DEAD_LETTER_HEADERS.reason]).toBe(reason);
      expect(headers[DEAD_LETTER_HEADERS.queue]).toBe(queues.low[0]);
      expect(typeof headers[DEAD_LETTER_HEADERS.detail]).toBe('string');
      expect(message.content.equals(content)).toBe(true);

      // The worker is still alive and processing, and the bad message did not come back.
      const client = app.get(CogmanClient);
      const task = await client.sendTask({ name: 'known', payload: { after: reason } });
      await waitFor(
        'the next task to succeed',
        async () => (await client.getTask(task.taskId))?.status === 'success',
      );
      expect(handled).toContainEqual({ after: reason });
      expect((await channel.checkQueue(queues.low[0])).messageCount).toBe(0);
      expect((await channel.checkQueue(queues.deadLetter)).messageCount).toBe(0);

      const id = options.messageId;
      if (id && reason !== 'missing_task_name') {
        const record = await client.getTask(id);
        expect(record).toMatchObject({ status: 'failed' });
        expect(record!.failError).toContain(reason);
      }
    },
  );

  it('dead-letters many bad messages in a row without stalling (no self-deadlock)', async () => {
    for (let i = 0; i < 50; i++) {
      channel.publish('', queues.low[0], Buffer.from('x'), {
        headers: { TaskName: 'nobody', TaskID: `bulk-${i}` },
      });
    }
    await channel.waitForConfirms();
    await waitFor(
      '50 dead letters',
      async () => (await channel.checkQueue(queues.deadLetter)).messageCount === 50,
    );
    const client = app.get(CogmanClient);
    const task = await client.sendTask({ name: 'known', payload: 'still alive' });
    await waitFor(
      'the worker to go on',
      async () => (await client.getTask(task.taskId))?.status === 'success',
    );
    await channel.purgeQueue(queues.deadLetter);
  });
});
