import type { ChannelModel } from 'amqplib';
import type { Redis } from 'ioredis';
import { CogmanClient, type TaskRecord } from '@cogman/nestjs';
import { testHarness } from './support/harness';
import { CapturedLogs } from './support/logs';
import { openAmqp, openRedis, queueNames } from './support/services';
import { waitFor } from './support/wait';
import { runCounts, type WorkerProcess } from './support/worker-process';

/**
 * A rolling deploy: workers with different handler sets share the queues. A worker that receives
 * a task it has no handler for hands it back for another, so every task runs where its handler
 * is; one that no worker handles is dead-lettered once `unknownTaskGracePeriod` has passed.
 */
describe('Workers with different handlers', () => {
  let redis: Redis;
  let amqp: ChannelModel;
  const harness = testHarness();

  beforeAll(async () => {
    redis = openRedis();
    amqp = await openAmqp();
  });

  afterEach(() => harness.afterEach());

  afterAll(async () => {
    redis.disconnect();
    await amqp.close();
    await harness.afterAll();
  });

  /** A process with Cogman's defaults (startWorker: true) and no handler of its own. */
  async function producer(label: string) {
    const namespace = harness.namespace(label);
    const logs = new CapturedLogs();
    const app = await harness.app({ namespace }, [], { logger: logs });
    return { namespace, logs, client: app.get(CogmanClient) };
  }

  /** Waits until the live workers' reports name these tasks (`/queues` shows the same). */
  async function served(client: CogmanClient, expected: Record<string, WorkerProcess[]>) {
    const names = Object.keys(expected).sort();
    return waitFor('the workers to report their task names', async () => {
      const { tasks } = await client.queues();
      if (tasks?.map((task) => task.name).join() !== names.join()) return null;
      const match = tasks.every((task) => {
        const pids = expected[task.name].map((worker) => worker.pid);
        return (
          task.workers.length === pids.length &&
          task.workers.every((id) => pids.some((pid) => id.includes(`-${pid}-`)))
        );
      });
      return match && tasks;
    });
  }

  it('runs every task on the worker that has its handler, failing none', async () => {
    const { namespace, client, logs } = await producer('rolling');
    // Without handlers, the producer consumes nothing, and says so.
    expect(client.services().worker).toBeNull();
    expect(logs.find('log', 'no task handlers are registered in this process')).toHaveLength(1);

    const older = await harness.worker(namespace, { COGMAN_HANDLERS: 'work' });
    const newer = await harness.worker(namespace, { COGMAN_HANDLERS: 'work,other' });
    await served(client, { work: [older, newer], other: [newer] });
    const { queues } = await client.queues();
    // Two consumers on each task queue: the two workers, not the producer.
    expect(queues.filter((q) => q.kind !== 'dead-letter').map((q) => q.consumers)).toEqual([2, 2]);

    // All at once, in a mix that round robin over the two consumers cannot sort by name.
    const sent: TaskRecord[] = await client.sendTasks(
      Array.from({ length: 40 }, (_, n) => ({
        name: n % 3 ? 'work' : 'other',
        payload: { n },
        priority: n % 5 < 2 ? ('high' as const) : ('low' as const),
      })),
    );
    const records = await waitFor(
      'every task to succeed',
      async () => {
        const all = await Promise.all(sent.map((task) => client.getTask(task.taskId)));
        return all.every((record) => record?.status === 'success') && all;
      },
      { timeout: 60_000, interval: 250 },
    );
    expect(records.map((record) => record!.failError)).toEqual(sent.map(() => null));
    const runs = await runCounts(
      redis,
      namespace,
      sent.map((task) => task.taskId),
    );
    expect([...runs.values()]).toEqual(sent.map(() => 1));
    const started = await redis.lrange(`test:${namespace}:started`, 0, -1);
    const ranOn = new Map(started.map((line) => line.split(' ') as [string, string]));
    for (const task of sent.filter((task) => task.name === 'other')) {
      expect(ranOn.get(task.taskId)).toBe(String(newer.pid));
    }
    const channel = await amqp.createChannel();
    const deadLetters = await channel.checkQueue(queueNames(namespace).deadLetter);
    await channel.close();
    expect(deadLetters.messageCount).toBe(0);
    // Every name sent is served: no warning.
    expect(logs.find('warn', 'No live worker has a handler')).toEqual([]);
  });

  it('dead-letters a task no worker handles once the grace period has passed', async () => {
    const { namespace, client, logs } = await producer('unknown-task');
    const worker = await harness.worker(namespace, {
      COGMAN_HANDLERS: 'work',
      COGMAN_UNKNOWN_TASK_GRACE: '1500',
    });
    await served(client, { work: [worker] });

    const unknown = await client.sendTask({ name: 'nobody' });
    await client.sendTask({ name: 'nobody' });
    const known = await client.sendTask({ name: 'work', payload: {} });
    // Still sent, with one warning for the name.
    expect(unknown.status).toBe('queued');
    await waitFor('the warning', () => logs.find('warn', 'task "nobody"').length > 0);

    const failed = await waitFor(
      'the unknown task to be dead-lettered',
      async () => {
        const record = await client.getTask(unknown.taskId);
        return record?.status === 'failed' && record;
      },
      { timeout: 30_000, interval: 100 },
    );
    expect(failed.failError).toMatch(
      /^dead-lettered \(unknown_task\): no handler for task "nobody" in this worker, and none took it within unknownTaskGracePeriod \(1500 ms, handed back [1-9]\d* time\(s\)\): no live worker has a handler for "nobody"$/,
    );
    expect(Date.now() - unknown.createdAt.getTime()).toBeGreaterThanOrEqual(1500);
    expect((await client.getTask(known.taskId))?.status).toBe('success');

    const channel = await amqp.createChannel();
    const message = await waitFor('the dead-lettered message', async () => {
      const got = await channel.get(queueNames(namespace).deadLetter, { noAck: true });
      return got && got.properties.messageId === unknown.taskId ? got : null;
    });
    await channel.close();
    expect(message.properties.headers).toMatchObject({
      'x-cogman-dead-letter-reason': 'unknown_task',
      'x-cogman-hand-backs': expect.any(Number) as number,
    });
    expect(logs.find('warn', 'No live worker has a handler for task')).toEqual([
      expect.stringContaining('"nobody"') as string,
    ]);
  });
});
