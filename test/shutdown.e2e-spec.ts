import type { ChannelModel } from 'amqplib';
import {
  ClientClosedError,
  CogmanClient,
  TaskHandler,
  type CogmanTaskHandler,
  type TaskContext,
} from '@cogman/nestjs';
import { startApp } from './support/app';
import { cleanUp, openAmqp, queueNames, uniqueNamespace } from './support/services';
import { deferred, waitFor, within } from './support/wait';

type Mode = 'finish-when-released' | 'stop-on-abort-once' | 'ignore-abort' | 'quick';

const release = deferred();
const runs: { taskId: string; aborted: boolean }[] = [];

@TaskHandler('slow')
class SlowHandler implements CogmanTaskHandler<{ mode: Mode }> {
  async handle({ mode }: { mode: Mode }, ctx: TaskContext) {
    const run = { taskId: ctx.task.taskId, aborted: false };
    runs.push(run);
    if (mode === 'finish-when-released') await release.promise;
    const first = runs.filter((r) => r.taskId === ctx.task.taskId).length === 1;
    if (mode === 'stop-on-abort-once' && first) {
      await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
      run.aborted = true;
      throw ctx.signal.reason;
    }
    if (mode === 'ignore-abort') await new Promise(() => {});
  }
}

describe('Graceful shutdown', () => {
  let amqp: ChannelModel;
  const namespaces: string[] = [];

  beforeAll(async () => {
    amqp = await openAmqp();
  });

  afterAll(async () => {
    release.resolve();
    await amqp?.close();
    for (const namespace of namespaces) await cleanUp(namespace);
  });

  async function setUp(label: string, shutdownTimeout: number) {
    const namespace = uniqueNamespace(label);
    namespaces.push(namespace);
    const producer = await startApp({ namespace, startWorker: false });
    const worker = await startApp({ namespace, shutdownTimeout }, [SlowHandler]);
    const client = producer.get(CogmanClient);
    const send = async (mode: Mode) => {
      const task = await client.sendTask({ name: 'slow', payload: { mode } });
      return task.taskId;
    };
    const channel = await amqp.createChannel();
    const ready = (queue = queueNames(namespace).low[0]) => channel.checkQueue(queue);
    return { namespace, producer, worker, client, send, ready };
  }

  it('stops consuming, lets a running handler finish within the timeout, then acks it', async () => {
    const { producer, worker, client, send, ready } = await setUp('drain', 30_000);
    try {
      const taskId = await send('finish-when-released');
      await waitFor('the handler to start', () => runs.some((run) => run.taskId === taskId));

      const closing = worker.close();
      // Once consumers are cancelled, new tasks stay in the queue.
      await waitFor(
        'the consumer to be cancelled',
        async () => (await ready()).consumerCount === 0,
      );
      const waiting = await send('quick');
      release.resolve();
      await within('close to finish', closing);

      expect((await client.getTask(taskId))?.status).toBe('success');
      expect((await client.getTask(waiting))?.status).toBe('queued');
      expect((await ready()).messageCount).toBe(1);
      // A closed application takes no more tasks.
      await expect(worker.get(CogmanClient).sendTask({ name: 'slow' })).rejects.toThrow(
        ClientClosedError,
      );
    } finally {
      await producer.close();
    }
  });

  it('aborts a handler still running at the timeout; its message is redelivered and processed', async () => {
    const { namespace, producer, worker, client, send, ready } = await setUp('abort', 300);
    try {
      const taskId = await send('stop-on-abort-once');
      await waitFor('the handler to start', () => runs.some((run) => run.taskId === taskId));
      await within('close to finish', worker.close());

      const aborted = runs.find((run) => run.taskId === taskId);
      expect(aborted?.aborted).toBe(true);
      // Not recorded as a failure: still queued (it ran less than progressAfter), and back in
      // the queue.
      expect((await client.getTask(taskId))?.status).toBe('queued');
      expect((await ready()).messageCount).toBe(1);

      // Another worker picks it up and, this time, the handler finishes.
      const next = await startApp({ namespace }, [SlowHandler]);
      try {
        await waitFor(
          'the redelivered task to succeed',
          async () => (await client.getTask(taskId))?.status === 'success',
        );
      } finally {
        await next.close();
      }
      expect(runs.filter((run) => run.taskId === taskId)).toHaveLength(2);
    } finally {
      await producer.close();
    }
  });

  it('does not hang on a handler that ignores the abort signal', async () => {
    const { producer, worker, client, send, ready } = await setUp('ignore', 300);
    try {
      const taskId = await send('ignore-abort');
      await waitFor('the handler to start', () => runs.some((run) => run.taskId === taskId));
      await within('close to finish despite the handler', worker.close(), 10_000);
      expect((await client.getTask(taskId))?.status).toBe('queued');
      expect((await ready()).messageCount).toBe(1);
    } finally {
      await producer.close();
    }
  });
});
