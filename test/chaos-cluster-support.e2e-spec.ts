import { connect, type ChannelModel } from 'amqplib';
import { existsSync } from 'node:fs';
import {
  AmqpConnections,
  ChaosServices,
  connectionClosed,
  type RabbitMQCluster,
  Timings,
  isListening,
  pidAlive,
  processesMentioning,
  reaper,
} from './support/chaos';
import { AMQP_URI } from './support/services';
import { waitFor, within } from './support/wait';

/** Messages published to the quorum queue before its leader is killed. */
const MESSAGES = 500;
const QUEUE = 'chaos.cluster.quorum';

describe('Chaos support: a private RabbitMQ cluster (RabbitMQCluster)', () => {
  const chaos = new ChaosServices();
  const timings = new Timings();
  const connections = new AmqpConnections();
  let cluster: RabbitMQCluster;
  /** A connection to the machine's shared broker, which the cluster must never disturb. */
  let shared: ChannelModel;
  let sharedClosed = false;
  let sharedEpmdListened = false;
  /** The node killed in the failover test, started again in the next one. */
  let killed = -1;

  const open = (uri: string) => connections.open(uri);

  beforeAll(async () => {
    shared = await connect(AMQP_URI);
    shared.on('close', () => (sharedClosed = true));
    sharedEpmdListened = await isListening(4369);
    cluster = await chaos.rabbitmqCluster({ nodes: 3 });
  });

  afterEach(async () => {
    await connections.closeAll();
  });

  afterAll(async () => {
    await chaos.stopAll();
    await shared?.close().catch(() => {});
    console.log(
      `RabbitMQ cluster timings:\n  spec: ${timings.toString()}\n  cluster: ${cluster?.timings.toString()}`,
    );
  });

  it('forms a cluster of three private nodes sharing one private epmd', async () => {
    const { nodes } = cluster;
    expect(nodes).toHaveLength(3);
    const id = /^cogman-chaos-([0-9a-f]{8})-0@localhost$/.exec(nodes[0].name)?.[1];
    expect(id).toBeDefined();
    expect(nodes.map((node) => node.name)).toEqual(
      [0, 1, 2].map((i) => `cogman-chaos-${id}-${i}@localhost`),
    );
    const ports = [cluster.epmdPort, ...nodes.flatMap((node) => [node.amqpPort, node.distPort])];
    expect(new Set(ports).size).toBe(7);
    expect(ports).not.toContain(5672);
    expect(ports).not.toContain(4369);
    expect(cluster.uris).toEqual(
      nodes.map((node) => `amqp://guest:guest@127.0.0.1:${node.amqpPort}`),
    );
    for (const node of nodes) {
      expect(node.dir.startsWith(`${cluster.dir}/`)).toBe(true);
      expect(existsSync(`${node.dir}/mnesia/${node.name}`)).toBe(true);
    }

    expect(await cluster.runningNodes()).toEqual([0, 1, 2]);
    // Node 2 knows all three as members, and no plugin runs.
    const status = JSON.parse(await cluster.ctl(2, 'cluster_status', '--formatter', 'json'));
    expect([...status.disk_nodes].sort()).toEqual(nodes.map((node) => node.name));
    expect((await cluster.ctl(1, 'eval', 'rabbit_plugins:active().')).trim()).toBe('[]');
    // Every process is known to the reaper, so a crashed test process leaves none behind.
    const tracked = reaper.tracked().map(({ pid }) => pid);
    expect(tracked).toEqual(expect.arrayContaining([cluster.epmdPid, ...nodes.map((n) => n.pid)]));
    expect(reaper.trackedDirs()).toContain(cluster.dir);

    for (const uri of cluster.uris) {
      const channel = await (await open(uri)).createChannel();
      await channel.close();
    }
  });

  it('keeps every confirmed message of a quorum queue when its leader is killed', async () => {
    const publisher = await open(cluster.uris[0]);
    const channel = await publisher.createConfirmChannel();
    await channel.assertQueue(QUEUE, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    await timings.measure(`publish ${MESSAGES}`, async () => {
      for (let i = 0; i < MESSAGES; i++) {
        channel.sendToQueue(QUEUE, Buffer.from(String(i)), { persistent: true });
      }
      await channel.waitForConfirms();
    });
    const members = JSON.parse(
      await cluster.cli(1, 'rabbitmq-queues', 'quorum_status', QUEUE, '--formatter', 'json'),
    ) as { 'Node Name': string }[];
    expect(members.map((member) => member['Node Name']).sort()).toEqual(
      cluster.nodes.map((node) => node.name),
    );

    const leader = await cluster.waitForLeader(QUEUE);
    const { pid, amqpPort, uri } = cluster.nodes[leader];
    const clients = await open(uri);
    const lost = connectionClosed(clients);

    await cluster.kill(leader);
    killed = leader;

    expect(pidAlive(pid!)).toBe(false);
    expect(cluster.nodes[leader].pid).toBeUndefined();
    await within('the client of the killed node to see it drop', lost, 10_000);
    expect(await isListening(amqpPort)).toBe(false);
    const next = await cluster.waitForLeader(QUEUE, { notOn: leader, timeout: 30_000 });
    expect(next).not.toBe(leader);
    const survivors = [0, 1, 2].filter((i) => i !== leader);
    expect(await cluster.runningNodes()).toEqual(survivors);

    // Consumed through the survivor that does not lead: the cluster routes to the new leader.
    const reader = survivors.find((i) => i !== next)!;
    const consumer = await (await open(cluster.uris[reader])).createChannel();
    await consumer.prefetch(100);
    const received: string[] = [];
    await timings.measure(`consume ${MESSAGES}`, async () => {
      const { consumerTag } = await consumer.consume(QUEUE, (message) => {
        if (!message) return;
        received.push(message.content.toString());
        consumer.ack(message);
      });
      await waitFor(`${MESSAGES} messages from node ${reader}`, () => received.length >= MESSAGES, {
        timeout: 30_000,
      });
      await consumer.cancel(consumerTag);
    });
    expect(received).toHaveLength(MESSAGES);
    expect(new Set(received)).toEqual(
      new Set(Array.from({ length: MESSAGES }, (_, i) => String(i))),
    );
    await waitFor(
      'the acks to settle',
      async () => (await consumer.checkQueue(QUEUE)).messageCount === 0,
    );
  });

  it('boots the killed node again: it rejoins the cluster and the queue', async () => {
    expect(killed).toBeGreaterThanOrEqual(0);
    const before = cluster.nodes.map((node) => node.pid);

    await cluster.startNode(killed);

    expect(await cluster.runningNodes()).toEqual([0, 1, 2]);
    const node = cluster.nodes[killed];
    expect(node.pid).toBeDefined();
    expect(before).not.toContain(node.pid);
    // Its member of the queue follows the leader again.
    await timings.measure('member catches up', () =>
      waitFor(
        `node ${killed}'s member of ${QUEUE} to follow`,
        async () => {
          const members = JSON.parse(
            await cluster.cli(
              killed,
              'rabbitmq-queues',
              'quorum_status',
              QUEUE,
              '--formatter',
              'json',
            ),
          ) as { 'Node Name': string; 'Raft State': unknown }[];
          const own = members.find((member) => member['Node Name'] === node.name);
          return own?.['Raft State'] === 'follower' || own?.['Raft State'] === 'leader';
        },
        { timeout: 30_000, interval: 200 },
      ),
    );
    const channel = await (await open(node.uri)).createChannel();
    expect((await channel.checkQueue(QUEUE)).messageCount).toBe(0);
  });

  it('stopNode stops one node cleanly; stop() leaves no process, port or dir behind', async () => {
    const last = cluster.nodes[2];
    await cluster.stopNode(2);
    expect(pidAlive(last.pid!)).toBe(false);
    expect(await cluster.runningNodes()).toEqual([0, 1]);

    const pids = [
      cluster.epmdPid!,
      ...cluster.nodes.flatMap((node) => (node.pid ? [node.pid] : [])),
    ];
    expect(pids).toHaveLength(3);
    const ports = [
      cluster.epmdPort,
      ...cluster.nodes.flatMap((node) => [node.amqpPort, node.distPort]),
    ];
    const dirs = [cluster.dir, ...cluster.nodes.map((node) => node.dir)];

    await cluster.stop();

    expect(pids.filter(pidAlive)).toEqual([]);
    const listening = await Promise.all(ports.map((port) => isListening(port)));
    expect(ports.filter((_, i) => listening[i])).toEqual([]);
    expect(dirs.filter((dir) => existsSync(dir))).toEqual([]);
    expect(processesMentioning(dirs[0])).toEqual([]);
    const tracked = reaper.tracked().map(({ pid }) => pid);
    expect(tracked.filter((pid) => pids.includes(pid))).toEqual([]);
    expect(reaper.trackedDirs().filter((dir) => dirs.includes(dir))).toEqual([]);
    // The machine's shared broker and epmd never noticed.
    expect(sharedClosed).toBe(false);
    await (await shared.createChannel()).close();
    expect(await isListening(4369)).toBe(sharedEpmdListened);
  });
});
