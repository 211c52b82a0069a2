import type { ChannelModel } from 'amqplib';
import type { INestApplicationContext } from '@nestjs/common';
import {
  CogmanClient,
  TaskHandler,
  type CogmanModuleOptions,
  type CogmanTaskHandler,
  type TaskContext,
} from '@cogman/nestjs';
import { startApp } from './support/app';
import { ChaosServices } from './support/chaos';
import { AMQP_URI, cleanUp, openAmqp, queueNames, uniqueNamespace } from './support/services';
import { deferred, waitFor, within } from './support/wait';

const CONCURRENCY = 2;
const MULTIPLIER = 3;
const TASKS = 10;
/** Deliveries the worker holds: running, or read ahead. */
const HELD = CONCURRENCY * MULTIPLIER;

let gate = deferred();
const started: string[] = [];
let running = 0;
let mostRunning = 0;

@TaskHandler('gated')
class Gated implements CogmanTaskHandler {
  async handle(_payload: unknown, ctx: TaskContext) {
    started.push(ctx.task.taskId);
    mostRunning = Math.max(mostRunning, ++running);
    await gate.promise;
    running--;
  }
}

describe('Prefetch: deliveries read ahead of the handler slots', () => {
  let amqp: ChannelModel;
  const chaos = new ChaosServices();
  const namespaces: string[] = [];
  const apps: INestApplicationContext[] = [];

  beforeAll(async () => {
    amqp = await openAmqp();
  });

  beforeEach(() => {
    gate = deferred();
    started.length = 0;
    running = 0;
    mostRunning = 0;
  });

  afterEach(async () => {
    gate.resolve();
    for (const app of apps.splice(0)) await app.close();
  });

  afterAll(async () => {
    await chaos.stopAll();
    await amqp?.close();
    for (const namespace of namespaces) await cleanUp(namespace);
  });

  /**
   * A producer, TASKS gated tasks sent in order, and a worker holding what it can of them (the
   * worker reaches the broker at `amqpUri`, by default directly).
   */
  async function setUp(
    label: string,
    amqpUri = AMQP_URI,
    options: Partial<CogmanModuleOptions> = {},
  ) {
    const namespace = uniqueNamespace(label);
    namespaces.push(namespace);
    const producer = await startApp({ namespace, startWorker: false });
    apps.push(producer);
    const client = producer.get(CogmanClient);
    const ids: string[] = [];
    for (let n = 0; n < TASKS; n++) ids.push((await client.sendTask({ name: 'gated' })).taskId);
    const worker = await startApp(
      {
        namespace,
        amqpUri,
        lowPriorityConcurrency: CONCURRENCY,
        prefetchMultiplier: MULTIPLIER,
        shutdownTimeout: 30_000,
        ...options,
      },
      [Gated],
    );
    apps.push(worker);
    const channel = await amqp.createChannel();
    const ready = async () => (await channel.checkQueue(queueNames(namespace).low[0])).messageCount;
    // The first CONCURRENCY run; the worker holds HELD in all.
    await waitFor('the handler slots to fill', () => running === CONCURRENCY);
    await waitFor('the worker to read ahead', async () => (await ready()) === TASKS - HELD);
    return { client, worker, ids, ready, namespace };
  }

  it('runs no more handlers than its concurrency, and the next as soon as a slot frees', async () => {
    const { client, worker, ids } = await setUp('limit');
    expect(started).toEqual(ids.slice(0, CONCURRENCY));
    // The deliveries read ahead are held, not active.
    expect(worker.get(CogmanClient).services().worker).toMatchObject({
      activeTasks: CONCURRENCY,
      lowPriorityConcurrency: CONCURRENCY,
      prefetchMultiplier: MULTIPLIER,
    });

    // A task read ahead and cancelled before its turn never runs.
    const held = ids[CONCURRENCY];
    expect((await client.cancelTask(held)).status).toBe('cancelled');

    gate.resolve();
    await waitFor(
      'every other task to succeed',
      async () => {
        const records = await Promise.all(ids.map((id) => client.getTask(id)));
        return records.filter((record) => record?.status === 'success').length === TASKS - 1;
      },
      { timeout: 30_000 },
    );
    expect(mostRunning).toBe(CONCURRENCY);
    expect(started).toEqual(ids.filter((id) => id !== held));
    expect((await client.getTask(held))?.status).toBe('cancelled');
  });

  it('hands the deliveries read ahead back at once on shutdown, and waits for running handlers', async () => {
    const { client, worker, ids, ready } = await setUp('shutdown');
    const closing = worker.close();
    apps.splice(apps.indexOf(worker), 1);

    // The read-ahead deliveries go back while both handlers still run (shutdownTimeout is 30 s).
    await waitFor(
      'the read-ahead deliveries to be back',
      async () => (await ready()) === TASKS - CONCURRENCY,
    );
    expect(running).toBe(CONCURRENCY);

    gate.resolve();
    await within('close to finish', closing);
    const records = await Promise.all(ids.map((id) => client.getTask(id)));
    expect(records.map((record) => record?.status)).toEqual([
      ...Array<string>(CONCURRENCY).fill('success'),
      ...Array<string>(TASKS - CONCURRENCY).fill('queued'),
    ]);
    expect(started).toEqual(ids.slice(0, CONCURRENCY));
    expect(await ready()).toBe(TASKS - CONCURRENCY);
  });

  it('hands read-ahead deliveries back as new deliveries: shutdowns bring no task nearer its delivery limit', async () => {
    // With deliveryLimit 1, any redelivery the worker counted would be dead-lettered.
    const options = { deliveryLimit: 1 };
    const { client, ids, ready, namespace } = await setUp('hand-back', AMQP_URI, options);
    for (let round = 0; round < 2; round++) {
      const worker = apps.pop()!;
      const closing = worker.close();
      // Every delivery not started goes back before the running handlers are let finish.
      await waitFor(
        'the read-ahead deliveries to be back',
        async () => (await ready()) === TASKS - started.length,
      );
      gate.resolve();
      await within('close to finish', closing);
      gate = deferred();
      running = 0;
      apps.push(
        await startApp(
          {
            namespace,
            lowPriorityConcurrency: CONCURRENCY,
            prefetchMultiplier: MULTIPLIER,
            ...options,
          },
          [Gated],
        ),
      );
      await waitFor('the next worker to start tasks', () => running === CONCURRENCY);
    }
    gate.resolve();
    await waitFor('every task to succeed', async () =>
      (await Promise.all(ids.map((id) => client.getTask(id)))).every(
        (record) => record?.status === 'success',
      ),
    );
    expect([...new Set(started)].sort()).toEqual([...ids].sort());
    expect(started).toHaveLength(TASKS);
    const channel = await amqp.createChannel();
    expect((await channel.checkQueue(queueNames(namespace).deadLetter)).messageCount).toBe(0);
    await channel.close();
  });

  it('drops the deliveries read ahead when its connection goes; after the reconnect each task runs once', async () => {
    const proxy = await chaos.proxy({ port: Number(new URL(AMQP_URI).port) });
    const { client, worker, ids } = await setUp('cut', proxy.uriFor(AMQP_URI));
    const broker = () => worker.get(CogmanClient).services().broker;
    proxy.cut({ mode: 'reset' });
    await waitFor('the worker to lose the broker', () => !broker().consumerConnected);

    // The running handlers finish (their acks cannot reach the broker); the deliveries read
    // ahead on the lost channel are not started in their slots.
    gate.resolve();
    const running = ids.slice(0, CONCURRENCY);
    await waitFor('the running handlers to succeed', async () => {
      const records = await Promise.all(running.map((id) => client.getTask(id)));
      return records.every((record) => record?.status === 'success');
    });
    // A slot is freed before the outcome is recorded: had a read-ahead delivery been started
    // in it, it would be here by now.
    expect(started).toEqual(running);

    // Back: the broker redelivers all it had handed out; the finished ones are not run again.
    proxy.restore();
    await waitFor(
      'every task to succeed',
      async () => {
        const records = await Promise.all(ids.map((id) => client.getTask(id)));
        return records.every((record) => record?.status === 'success');
      },
      { timeout: 30_000 },
    );
    expect([...started].sort()).toEqual([...ids].sort());
    expect(broker().consumerConnected).toBe(true);
  });
});
