import { connect, type ChannelModel } from 'amqplib';
import { existsSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { mongo } from 'mongoose';
import {
  ChaosServices,
  type IsolatedFerretDB,
  type IsolatedRabbitMQ,
  type TcpProxy,
  isListening,
  pidAlive,
  processesMentioning,
  reaper,
  ServiceProcess,
} from './support/chaos';
import { AMQP_URI } from './support/services';
import { deferred, waitFor, within } from './support/wait';

/** Resolves with the first 'error' or 'close' of an amqplib connection. */
function closed(connection: ChannelModel) {
  const done = deferred<Error | undefined>();
  connection.on('error', (error: Error) => done.resolve(error));
  connection.on('close', (error?: Error) => done.resolve(error));
  return done.promise;
}

describe('Chaos support (isolated services, TCP proxy, teardown)', () => {
  const chaos = new ChaosServices();
  const connections: ChannelModel[] = [];
  const started: { label: string; timings: { toString(): string } }[] = [];
  let broker: IsolatedRabbitMQ;

  async function open(uri: string): Promise<ChannelModel> {
    const connection = await connect(uri);
    connection.on('error', () => {});
    connections.push(connection);
    return connection;
  }

  beforeAll(async () => {
    broker = await chaos.rabbitmq();
    started.push({ label: 'rabbitmq', timings: broker.timings });
  });

  afterEach(async () => {
    await Promise.allSettled(connections.splice(0).map((connection) => connection.close()));
  });

  afterAll(async () => {
    await chaos.stopAll();
    console.log(
      `Chaos service timings:\n${started.map((s) => `  ${s.label}: ${s.timings.toString()}`).join('\n')}`,
    );
  });

  describe('IsolatedRabbitMQ', () => {
    it('runs a node of its own: its own name, ports and dirs, no plugins', async () => {
      expect(broker.nodeName).toMatch(/^cogman-chaos-[0-9a-f]{8}@localhost$/);
      expect([broker.amqpPort, broker.distPort, broker.epmdPort]).not.toContain(5672);
      expect(new Set([broker.amqpPort, broker.distPort, broker.epmdPort]).size).toBe(3);
      expect(broker.uri).toBe(`amqp://guest:guest@127.0.0.1:${broker.amqpPort}`);
      expect(existsSync(join(broker.dir, 'mnesia', broker.nodeName))).toBe(true);
      expect(await broker.ctl('list_queues', '-q', 'name')).toBe('');
      expect(await broker.ctl('eval', 'os:getpid().')).toContain(`"${broker.pid}"`);
      const plugins = await broker.ctl('eval', 'rabbit_plugins:active().');
      expect(plugins.trim()).toBe('[]');

      const connection = await open(broker.uri);
      const channel = await connection.createChannel();
      await channel.assertQueue('chaos.own-node', { durable: false });
      // The shared broker does not see it.
      const shared = await open(AMQP_URI);
      const sharedChannel = await shared.createChannel();
      sharedChannel.on('error', () => {});
      await expect(sharedChannel.checkQueue('chaos.own-node')).rejects.toThrow(/NOT_FOUND/);
    });

    it('keeps a durable queue and its persistent message across stopApp/startApp', async () => {
      const queue = 'chaos.durable';
      const connection = await open(broker.uri);
      const channel = await connection.createConfirmChannel();
      await channel.assertQueue(queue, { durable: true });
      channel.sendToQueue(queue, Buffer.from('kept'), { persistent: true });
      await channel.waitForConfirms();
      const lost = closed(connection);
      // A connection to the shared broker, watched throughout.
      const shared = await open(AMQP_URI);
      let sharedClosed = false;
      shared.on('close', () => (sharedClosed = true));

      await broker.stopApp();
      const error = await within('the client to be disconnected', lost, 10_000);
      expect(error?.message).toMatch(/CONNECTION_FORCED/);
      expect(await isListening(broker.amqpPort)).toBe(false);
      await broker.startApp();

      const again = await open(broker.uri);
      const check = await again.createChannel();
      expect((await check.checkQueue(queue)).messageCount).toBe(1);
      const message = await check.get(queue, { noAck: true });
      expect(message && message.content.toString()).toBe('kept');
      // The shared broker never noticed.
      expect(sharedClosed).toBe(false);
      await (await shared.createChannel()).close();
    });

    it('boots again after kill (SIGKILL of its VM) with its confirmed messages', async () => {
      const queue = 'chaos.after-kill';
      const connection = await open(broker.uri);
      const channel = await connection.createConfirmChannel();
      await channel.assertQueue(queue, { durable: true });
      channel.sendToQueue(queue, Buffer.from('confirmed'), { persistent: true });
      await channel.waitForConfirms();
      // A confirm means the message is on disk; the queue's declaration is in Mnesia, whose log
      // may not be on disk yet (a full CI run once lost the queue to the kill). Flush it first.
      expect(await broker.ctl('eval', 'mnesia:sync_log().')).toContain('ok');
      const lost = closed(connection);
      const before = broker.pid!;

      await broker.kill();
      expect(pidAlive(before)).toBe(false);
      expect(broker.pid).toBeUndefined();
      await within('the client to see the connection drop', lost, 10_000);
      expect(await isListening(broker.amqpPort)).toBe(false);

      await broker.start();
      expect(broker.pid).toBeDefined();
      expect(broker.pid).not.toBe(before);
      const again = await open(broker.uri);
      const check = await again.createChannel();
      const message = await check.get(queue, { noAck: true });
      expect(message && message.content.toString()).toBe('confirmed');
    });

    it('restarts (clean shutdown, new VM) on the same port with its data', async () => {
      const queue = 'chaos.after-restart';
      const setup = await open(broker.uri);
      const channel = await setup.createConfirmChannel();
      await channel.assertQueue(queue, { durable: true });
      channel.sendToQueue(queue, Buffer.from('restarted'), { persistent: true });
      await channel.waitForConfirms();
      const before = broker.pid!;

      await broker.restart();
      expect(pidAlive(before)).toBe(false);
      expect(broker.pid).not.toBe(before);
      const again = await open(broker.uri);
      const message = await (await again.createChannel()).get(queue, { noAck: true });
      expect(message && message.content.toString()).toBe('restarted');
    });
  });

  describe('IsolatedRedis', () => {
    it('keeps keys across a restart with AOF persistence, and loses them without', async () => {
      const [durable, volatile] = await Promise.all([
        chaos.redis({ persistence: 'aof' }),
        chaos.redis({ persistence: 'none' }),
      ]);
      started.push({ label: 'redis (aof)', timings: durable.timings });
      started.push({ label: 'redis (none)', timings: volatile.timings });
      expect(durable.port).not.toBe(6379);
      expect(volatile.port).not.toBe(durable.port);
      for (const redis of [durable, volatile]) {
        const client = new Redis(redis.uri);
        await client.set('chaos:key', 'kept');
        client.disconnect();
      }
      const [durablePid, volatilePid] = [durable.pid!, volatile.pid!];
      const port = durable.port;

      await Promise.all([durable.restart(), volatile.restart()]);

      expect(durable.port).toBe(port);
      expect(pidAlive(durablePid) || pidAlive(volatilePid)).toBe(false);
      const afterDurable = new Redis(durable.uri);
      const afterVolatile = new Redis(volatile.uri);
      try {
        expect(await afterDurable.get('chaos:key')).toBe('kept');
        expect(await afterVolatile.get('chaos:key')).toBeNull();
      } finally {
        afterDurable.disconnect();
        afterVolatile.disconnect();
      }
    });
  });

  describe('IsolatedFerretDB', () => {
    it('keeps a document across a restart', async () => {
      const ferretdb: IsolatedFerretDB = await chaos.ferretdb();
      started.push({ label: 'ferretdb', timings: ferretdb.timings });
      expect(ferretdb.port).not.toBe(27017);
      const write = new mongo.MongoClient(ferretdb.uri, { directConnection: true });
      try {
        await write
          .db('chaos')
          .collection('docs')
          .insertOne({ _id: 'kept' as never, n: 1 });
      } finally {
        await write.close();
      }
      const before = ferretdb.pid!;

      await ferretdb.restart();

      expect(pidAlive(before)).toBe(false);
      const read = new mongo.MongoClient(ferretdb.uri, { directConnection: true });
      try {
        const doc = await read
          .db('chaos')
          .collection('docs')
          .findOne({ _id: 'kept' as never });
        expect(doc).toEqual({ _id: 'kept', n: 1 });
      } finally {
        await read.close();
      }
    });
  });

  describe('TcpProxy', () => {
    let proxy: TcpProxy;

    beforeEach(async () => {
      proxy = await chaos.proxy({ port: broker.amqpPort });
    });

    it('passes traffic to its target and counts it', async () => {
      const connection = await open(proxy.uriFor(broker.uri));
      const channel = await connection.createChannel();
      await channel.assertQueue('chaos.proxied', { durable: false });
      channel.sendToQueue('chaos.proxied', Buffer.from('through'));
      const message = await waitFor('the message', () => channel.get('chaos.proxied'));
      expect(message.content.toString()).toBe('through');
      expect(proxy.stats).toMatchObject({ accepted: 1, forwarded: 1, active: 1, reset: 0 });
      expect(proxy.stats.bytesToTarget).toBeGreaterThan(0);
      expect(proxy.stats.bytesToClient).toBeGreaterThan(0);
    });

    it("'reset' breaks open connections and refuses new ones until restored", async () => {
      const connection = await open(proxy.uriFor(broker.uri));
      const lost = closed(connection);

      proxy.cut({ mode: 'reset' });

      const error = await within('the client to see the reset', lost, 10_000);
      expect(error?.message).toMatch(/ECONNRESET|closed/i);
      expect(proxy.stats).toMatchObject({ active: 0, reset: 1 });
      await expect(connect(proxy.uriFor(broker.uri))).rejects.toThrow();
      expect(proxy.stats.reset).toBe(2);

      proxy.restore();
      const again = await open(proxy.uriFor(broker.uri));
      await (await again.createChannel()).close();
      expect(proxy.stats.forwarded).toBe(2);
    });

    it("'blackhole' stops traffic silently until heartbeats notice; restore releases held connections", async () => {
      const connection = await open(`${proxy.uriFor(broker.uri)}?heartbeat=1`);
      const lost = closed(connection);
      const before = proxy.stats;

      proxy.cut({ mode: 'blackhole' });

      const error = await within('the client heartbeat to time out', lost, 15_000);
      expect(error?.message).toMatch(/Heartbeat timeout/);
      expect(proxy.stats.bytesToTarget).toBe(before.bytesToTarget);
      expect(proxy.stats.bytesToClient).toBe(before.bytesToClient);

      // A new connection is accepted, but nothing reaches the broker.
      const raw: Socket = createConnection({ port: proxy.port, host: '127.0.0.1' });
      raw.on('error', () => {});
      const answer = deferred<Buffer>();
      raw.once('data', (chunk: Buffer) => answer.resolve(chunk));
      raw.write(Buffer.from('AMQP\x00\x00\x09\x01', 'latin1'));
      await waitFor('the proxy to accept it', () => proxy.stats.accepted === before.accepted + 1);
      expect(proxy.stats.forwarded).toBe(before.forwarded);

      proxy.restore();

      // The held connection moves on: the broker answers the protocol header it was sent.
      const reply = await within('the broker to answer the held connection', answer.promise);
      expect(reply[0]).toBe(1); // a method frame: connection.start
      expect(proxy.stats.forwarded).toBe(before.forwarded + 1);
      raw.destroy();
      const again = await open(proxy.uriFor(broker.uri));
      await (await again.createChannel()).close();
    });
  });

  describe('teardown', () => {
    it('kills what a test process that died left behind (the watchdog)', async () => {
      const fixture = ServiceProcess.spawn(
        'chaos-orphans fixture',
        process.execPath,
        ['-r', '@swc-node/register', join(__dirname, 'fixtures', 'chaos-orphans.main.ts')],
        { cwd: join(__dirname, '..') },
      );
      try {
        const line = await waitFor(
          'the fixture to start its services',
          () => {
            if (!fixture.running) throw new Error(`the fixture exited:\n${fixture.output()}`);
            return fixture
              .output()
              .split('\n')
              .find((text) => text.startsWith('{'));
          },
          { timeout: 90_000, interval: 100 },
        );
        const orphans = JSON.parse(line) as { pids: number[]; dirs: string[] };
        expect(orphans.pids).toHaveLength(4);
        expect(orphans.pids.every(pidAlive)).toBe(true);

        await fixture.kill();

        await waitFor(
          'the watchdog to kill the orphans and remove their dirs',
          () => !orphans.pids.some(pidAlive) && !orphans.dirs.some(existsSync),
          { timeout: 15_000 },
        );
        for (const dir of orphans.dirs) expect(processesMentioning(dir)).toEqual([]);
      } finally {
        await fixture.kill();
      }
    });

    it('stopAll stops every process it started and deletes every dir', async () => {
      const pids = reaper.tracked().map(({ pid }) => pid);
      const dirs = reaper.trackedDirs();
      expect(pids).toEqual(expect.arrayContaining([broker.pid, broker.epmdPid]));
      expect(dirs).toContain(broker.dir);
      expect(pids.every(pidAlive)).toBe(true);
      const watchdog = reaper.watchdogPid!;
      expect(pidAlive(watchdog)).toBe(true);

      await chaos.stopAll();

      expect(pids.filter(pidAlive)).toEqual([]);
      expect(dirs.filter((dir) => existsSync(dir))).toEqual([]);
      expect(dirs.flatMap(processesMentioning)).toEqual([]);
      expect(reaper.tracked()).toEqual([]);
      await waitFor('the watchdog to exit', () => !pidAlive(watchdog), { timeout: 5000 });
    });
  });
});
