import type { Redis } from 'ioredis';
import { CogmanClient } from '@cogman/nestjs';
import { ChaosServices, describeStream, runStream, type RabbitMQCluster } from './support/chaos';
import { testHarness } from './support/harness';
import { startWorkersUntilDeadLettered } from './support/poison';
import { openRedis, queueNames } from './support/services';
import { waitFor } from './support/wait';
import { runCounts } from './support/worker-process';

const DELIVERY_LIMIT = 3;

/**
 * Cogman on a three-node RabbitMQ cluster with quorum queues, as the README's Production topology
 * recommends: producers and workers are given every node's URI, and a node's loss costs a pause
 * and some duplicates, never a task.
 */
describe('Chaos: a RabbitMQ cluster with quorum queues loses a node', () => {
  const harness = testHarness();
  const chaos = new ChaosServices();
  let cluster: RabbitMQCluster;
  let redis: Redis;

  /** The node URIs, starting at node `first`: each process connects to another node first. */
  const uris = (first: number) =>
    cluster.uris.map((_, i) => cluster.uris[(first + i) % cluster.uris.length]);

  beforeAll(async () => {
    redis = openRedis();
    cluster = await chaos.rabbitmqCluster({ nodes: 3 });
  });

  afterEach(() => harness.afterEach());

  afterAll(async () => {
    redis.disconnect();
    await harness.afterAll().catch(() => {});
    await chaos.stopAll();
  });

  it('processes every task sent while the node leading the queues is killed, then brought back', async () => {
    const namespace = harness.namespace('chaos-cluster');
    const client = (
      await harness.app({
        namespace,
        amqpUri: uris(0),
        queueType: 'quorum',
        startWorker: false,
      })
    ).get(CogmanClient);
    const workerEnv = (first: number) => ({
      COGMAN_AMQP_URIS: uris(first).join(','),
      COGMAN_QUEUE_TYPE: 'quorum',
    });
    await harness.worker(namespace, workerEnv(1));
    await harness.worker(namespace, workerEnv(2));
    const queue = queueNames(namespace).low[0];
    let killed = -1;
    const report = await runStream({
      client,
      task: 'work',
      total: 2000,
      rate: 250,
      inFlight: 50,
      runs: (ids) => runCounts(redis, namespace, ids),
      settle: 120_000,
      faults: [
        {
          after: 600,
          name: "the queue leader's node killed (SIGKILL), a new leader elected, the node started again",
          run: async () => {
            killed = (await cluster.waitForLeader(queue))!;
            await cluster.kill(killed);
            await cluster.waitForLeader(queue, { notOn: killed });
            await cluster.startNode(killed);
          },
        },
      ],
    });
    console.log(
      describeStream(`Cluster node ${killed} (queue leader) killed and started again:`, report),
    );
    expect(report.rejected).toBe(0);
    expect(report.lost).toBe(0);
    expect(report.processed).toBe(report.accepted);
  });

  it(`dead-letters a poison task of a quorum queue after ${DELIVERY_LIMIT} deliveries; the task read ahead behind it by every killed worker runs`, async () => {
    const namespace = harness.namespace('chaos-cluster-poison');
    const client = (
      await harness.app({
        namespace,
        amqpUri: uris(0),
        queueType: 'quorum',
        startWorker: false,
      })
    ).get(CogmanClient);
    const poison = await client.sendTask({ name: 'poison' });
    const healthy = await client.sendTask({ name: 'work', payload: {} });
    let next = 0;
    const killed = await startWorkersUntilDeadLettered(
      client,
      poison.taskId,
      () =>
        harness.worker(namespace, {
          // Each worker on another node of the cluster.
          COGMAN_AMQP_URIS: uris(next++ % 3).join(','),
          COGMAN_QUEUE_TYPE: 'quorum',
          COGMAN_DELIVERY_LIMIT: String(DELIVERY_LIMIT),
          COGMAN_LOW_CONCURRENCY: '1',
        }),
      { most: DELIVERY_LIMIT + 2 },
    );
    expect(killed).toBe(DELIVERY_LIMIT);
    expect(await client.getTask(poison.taskId)).toMatchObject({
      status: 'failed',
      failError: expect.stringContaining('dead-lettered (delivery_limit)'),
    });
    await waitFor(
      'the healthy task to succeed',
      async () => (await client.getTask(healthy.taskId))?.status === 'success',
    );
  });
});
