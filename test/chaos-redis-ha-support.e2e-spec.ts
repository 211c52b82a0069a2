import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as pause } from 'node:timers/promises';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import {
  CLUSTER_SLOTS,
  ChaosServices,
  type RedisCluster,
  type RedisSentinelGroup,
  orphansOfKilledProcess,
  isListening,
  pidAlive,
  processesMentioning,
  queryRedis,
} from './support/chaos';
import { waitFor } from './support/wait';

/**
 * ioredis Cluster settings that carry a client through a master's failover. Until a replica is
 * promoted, a command for the killed master's slots fails with "Connection is closed." (the
 * dead node), MOVED (another node sends it back there) or CLUSTERDOWN (once the master is marked
 * failed); ioredis retries each, refreshing its slot map, at once for MOVED and after
 * `retryDelayOnFailover` / `retryDelayOnClusterDown` ms for the others, and gives up with "Too
 * many Cluster redirections" after `maxRedirections` tries. With the defaults (100 ms, 100 ms,
 * 16 tries) writes failed ~1.1 s into a failover that takes ~2.5 s here; 200 ms, 200 ms and 50
 * tries last over 5 s.
 */
const CLUSTER_CLIENT: ClusterOptions = {
  retryDelayOnFailover: 200,
  retryDelayOnClusterDown: 200,
  maxRedirections: 50,
};

/**
 * ioredis Sentinel settings. When the master's connection drops, ioredis reconnects after
 * `retryStrategy(times)` ms, asking the sentinels for the master each time (they name the old
 * one until the failover: refused), and holds the commands meanwhile (offline queue), resending
 * those in flight; a command fails after `maxRetriesPerRequest` reconnections. The defaults
 * (50 ms × times, at most 2 s; 20 tries, ~10 s) outlast a failover here (~3 s until the client
 * is back); these wait at most 1 s between reconnections and allow ~25 s, for a failover whose
 * first election fails (retried after twice `failover-timeout`).
 */
const SENTINEL_CLIENT: Partial<RedisOptions> = {
  retryStrategy: (times) => Math.min(times * 100, 1000),
  maxRetriesPerRequest: 30,
};

interface KeyValueClient {
  set(key: string, value: string): Promise<unknown>;
  get(key: string): Promise<string | null>;
}

/**
 * Writes `key` = 1, 2, 3... and reads each value back, one at a time, until `stop`. Records
 * every failure, when each write was acknowledged, and the longest gap between two
 * acknowledgements (how long writes stalled).
 */
function keepWriting(client: KeyValueClient, key: string) {
  const state = {
    written: 0,
    failures: [] as string[],
    acknowledged: [] as number[],
    stopped: false,
  };
  const began = performance.now();
  const loop = (async () => {
    while (!state.stopped) {
      const value = String(state.written + 1);
      try {
        await client.set(key, value);
        const read = await client.get(key);
        if (read !== value) state.failures.push(`read ${read} after writing ${value}`);
        state.written += 1;
        state.acknowledged.push(performance.now());
      } catch (error) {
        state.failures.push(
          `${Math.round(performance.now() - began)} ms: ${(error as Error).message}`,
        );
      }
      // Pacing, so that the loop does not take a core from the servers under test.
      await pause(10);
    }
  })();
  return {
    state,
    /** Writes acknowledged after `since` (a `performance.now()` time). */
    since: (since: number) => state.acknowledged.filter((at) => at > since).length,
    /** The longest time between two acknowledged writes, ms. */
    longestGap: () =>
      Math.round(
        state.acknowledged.reduce(
          (longest, at, index) =>
            index === 0 ? 0 : Math.max(longest, at - state.acknowledged[index - 1]),
          0,
        ),
      ),
    stop: async () => {
      state.stopped = true;
      await loop;
    },
  };
}

describe('Chaos support: a private Redis Cluster and Sentinel group', () => {
  const chaos = new ChaosServices();
  const clients: { disconnect(): void }[] = [];
  const report: string[] = [];

  afterEach(() => {
    for (const client of clients.splice(0)) client.disconnect();
  });

  afterAll(async () => {
    await chaos.stopAll();
    console.log(`Redis HA fixtures:\n${report.map((line) => `  ${line}`).join('\n')}`);
  });

  describe('RedisCluster', () => {
    let cluster: RedisCluster;

    beforeAll(async () => {
      cluster = await chaos.redisCluster();
    });

    afterAll(() => {
      report.push(`cluster: ${cluster.timings.toString()}`);
    });

    it('forms a cluster of 3 masters and 3 replicas, on private loopback ports, serving every slot', async () => {
      const nodes = await cluster.refresh();
      const masters = nodes.filter((node) => node.role === 'master');
      const replicas = nodes.filter((node) => node.role === 'replica');
      expect(masters).toHaveLength(3);
      expect(replicas).toHaveLength(3);
      expect(
        masters.flatMap((node) => node.slots).reduce((sum, [a, b]) => sum + b - a + 1, 0),
      ).toBe(CLUSTER_SLOTS);
      // Each master has one replica.
      expect(replicas.map((node) => node.masterPort).sort()).toEqual(
        masters.map((node) => node.port).sort(),
      );
      expect(new Set(cluster.ports).size).toBe(12);
      expect(cluster.ports).not.toContain(6379);
      expect(cluster.startupNodes).toEqual(nodes.map(({ port }) => ({ host: '127.0.0.1', port })));
      for (const node of nodes) {
        expect(pidAlive(node.pid!)).toBe(true);
        expect(existsSync(join(node.dir, 'nodes.conf'))).toBe(true);
        const [info, bind, myid] = await queryRedis(node.port, async (client) => [
          await client.cluster('INFO'),
          await client.config('GET', 'bind'),
          await client.cluster('MYID'),
        ]);
        expect(info).toContain('cluster_state:ok');
        expect(info).toContain(`cluster_slots_ok:${CLUSTER_SLOTS}`);
        expect(bind).toEqual(['bind', '127.0.0.1']);
        expect(myid).toBe(node.id);
      }
    });

    it('serves a Cluster client writing and reading keys across the slots', async () => {
      const client = new Cluster(cluster.startupNodes, CLUSTER_CLIENT);
      clients.push(client);
      const keys = Array.from({ length: 300 }, (_, i) => `chaos:spread:${i}`);
      for (const key of keys) await client.set(key, key.toUpperCase());
      for (const key of keys) expect(await client.get(key)).toBe(key.toUpperCase());
      // The keys landed on every master.
      const sizes = await Promise.all(client.nodes('master').map((node) => node.dbsize()));
      expect(sizes).toHaveLength(3);
      expect(sizes.every((size) => size > 0)).toBe(true);
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(keys.length);
      const slot = await cluster.slotOf(keys[0]);
      expect((await cluster.masterOf(keys[0])).slots.some(([a, b]) => a <= slot && slot <= b)).toBe(
        true,
      );
    });

    it("fails over when a key's master is killed; the client goes on; the node rejoins as a replica", async () => {
      const key = 'chaos:failover';
      const client = new Cluster(cluster.startupNodes, CLUSTER_CLIENT);
      clients.push(client);
      client.on('error', () => {});
      await client.set(key, '0');
      const master = await cluster.masterOf(key);
      const replica = cluster.nodes.find((node) => node.masterPort === master.port)!;
      const writer = keepWriting(client, key);
      await waitFor('writes before the kill', () => writer.since(0) >= 10);

      const killedAt = performance.now();
      await cluster.kill(master);
      expect(pidAlive(master.pid!)).toBe(false);
      const promoted = await cluster.waitForFailover(key);
      const failoverMs = Math.round(performance.now() - killedAt);

      expect(promoted).toMatchObject({ port: replica.port, role: 'master' });
      expect((await cluster.masterOf(key)).port).toBe(replica.port);
      const caughtUp = performance.now();
      await waitFor('the client to write after the failover', () => writer.since(caughtUp) >= 20);
      await writer.stop();
      expect(writer.state.failures).toEqual([]);
      expect(await client.get(key)).toBe(String(writer.state.written));

      const back = await cluster.restart(master);

      expect(back).toMatchObject({ port: master.port, role: 'replica', masterPort: promoted.port });
      expect(back.pid).not.toBe(master.pid);
      expect(back.id).toBe(master.id);
      const nodes = await cluster.refresh();
      expect(nodes.filter((node) => node.role === 'master')).toHaveLength(3);
      await waitFor('the rejoined replica to hold the key', () =>
        queryRedis(master.port, async (direct) => {
          await direct.call('READONLY');
          return (await direct.get(key)) === String(writer.state.written);
        }),
      );
      expect(await client.get(key)).toBe(String(writer.state.written));
      report.push(
        `cluster failover: ${failoverMs} ms from the kill to a whole cluster; writes stalled ` +
          `${writer.longestGap()} ms at most, ${writer.state.written} written, none failed`,
      );
    });
  });

  describe('RedisSentinelGroup', () => {
    let group: RedisSentinelGroup;

    beforeAll(async () => {
      group = await chaos.redisSentinel();
    });

    afterAll(() => {
      report.push(`sentinel: ${group.timings.toString()}`);
    });

    it('runs a master, two replicas and three sentinels that agree on it, on private loopback ports', async () => {
      const master = await group.master();
      const nodes = await group.refresh();
      expect(nodes.filter((node) => node.role === 'master').map((node) => node.port)).toEqual([
        master.port,
      ]);
      expect(nodes.filter((node) => node.masterPort === master.port)).toHaveLength(2);
      expect(group.sentinels).toHaveLength(3);
      expect(new Set(group.ports).size).toBe(6);
      expect(group.ports).not.toContain(6379);
      expect(group.ports).not.toContain(26379);
      for (const sentinel of group.sentinels) {
        const [quorum, address] = await queryRedis(sentinel.port, async (client) => [
          await client.call('SENTINEL', 'CKQUORUM', group.name),
          await client.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', group.name),
        ]);
        expect(quorum).toMatch(/^OK 3 usable Sentinels/);
        expect(address).toEqual(['127.0.0.1', String(master.port)]);
      }
      // Each sentinel has a conf of its own, which it rewrites with what it learns.
      const confs = group.sentinelNodes.map(({ dir }) =>
        readFileSync(join(dir, 'redis.conf'), 'utf8'),
      );
      expect(confs.every((conf) => conf.includes(`sentinel monitor ${group.name} 127.0.0.1`))).toBe(
        true,
      );
      expect(new Set(confs.map((conf) => /sentinel myid (\w+)/.exec(conf)?.[1])).size).toBe(3);
    });

    it('fails over when the master is killed; the client reconnects to the new one; the old one rejoins as a replica', async () => {
      const key = 'chaos:failover';
      const client = new Redis({
        sentinels: group.sentinels,
        name: group.name,
        ...SENTINEL_CLIENT,
      });
      clients.push(client);
      client.on('error', () => {});
      await client.set(key, '0');
      const writer = keepWriting(client, key);
      await waitFor('writes before the kill', () => writer.since(0) >= 10);

      const killedAt = performance.now();
      const old = await group.killMaster();
      expect(pidAlive(old.pid!)).toBe(false);
      const promoted = await group.waitForNewMaster(old);
      const failoverMs = Math.round(performance.now() - killedAt);

      expect(promoted.port).not.toBe(old.port);
      expect((await group.master()).port).toBe(promoted.port);
      const caughtUp = performance.now();
      await waitFor('the client to write after the failover', () => writer.since(caughtUp) >= 20);
      await writer.stop();
      expect(writer.state.failures).toEqual([]);
      const server = await client.info('server');
      expect(server).toContain(`tcp_port:${promoted.port}`);
      expect(await client.get(key)).toBe(String(writer.state.written));

      const back = await group.restart(old);

      expect(back).toMatchObject({ port: old.port, role: 'replica', masterPort: promoted.port });
      expect(back.pid).not.toBe(old.pid);
      expect((await group.master()).port).toBe(promoted.port);
      await waitFor('the rejoined replica to hold the key', () =>
        queryRedis(
          old.port,
          async (direct) => (await direct.get(key)) === String(writer.state.written),
        ),
      );
      await client.set(key, 'after the rejoin');
      expect(await client.get(key)).toBe('after the rejoin');
      report.push(
        `sentinel failover: ${failoverMs} ms from the kill to a settled group; writes stalled ` +
          `${writer.longestGap()} ms at most, ${writer.state.written} written, none failed`,
      );
    });
  });

  describe('teardown', () => {
    it('leaves nothing behind a test process that died (the watchdog)', async () => {
      const orphans = await orphansOfKilledProcess(`
        const { ChaosServices } = require('./test/support/chaos');
        (async () => {
          const chaos = new ChaosServices();
          const [cluster, group] = await Promise.all([chaos.redisCluster(), chaos.redisSentinel()]);
          const started = { pids: [...cluster.pids, ...group.pids], dirs: [...cluster.dirs, ...group.dirs] };
          process.stdout.write(JSON.stringify(started) + '\\n');
          setInterval(() => {}, 60000);
        })().catch((error) => { console.error(error); process.exit(1); });
      `);

      expect(orphans.pids).toHaveLength(12);
      expect(orphans.runningAtKill).toEqual(orphans.pids);
      expect(orphans.dirs).toHaveLength(12);
      await waitFor(
        'the watchdog to kill the orphans and remove their dirs',
        () => !orphans.pids.some(pidAlive) && !orphans.dirs.some(existsSync),
        { timeout: 15_000 },
      );
      for (const dir of orphans.dirs) expect(processesMentioning(dir)).toEqual([]);
    });

    it('stop() ends every process, frees every port and deletes every dir; the shared Redis is untouched', async () => {
      const [cluster, group] = await Promise.all([chaos.redisCluster(), chaos.redisSentinel()]);
      const pids = [...cluster.pids, ...group.pids];
      const ports = [...cluster.ports, ...group.ports];
      const dirs = [...cluster.dirs, ...group.dirs];
      expect(pids).toHaveLength(12);
      expect(ports).toHaveLength(18);
      expect(pids.every(pidAlive)).toBe(true);
      const shared = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true });
      clients.push(shared);
      const sharedPid = Number(/process_id:(\d+)/.exec(await shared.info('server'))?.[1]);

      await Promise.all([cluster.stop(), group.stop()]);

      expect(pids.filter(pidAlive)).toEqual([]);
      const listening = await Promise.all(ports.map(isListening));
      expect(ports.filter((_, i) => listening[i])).toEqual([]);
      expect(dirs.filter((dir) => existsSync(dir))).toEqual([]);
      expect(cluster.pids).toEqual([]);
      expect(group.pids).toEqual([]);
      expect(await shared.ping()).toBe('PONG');
      expect(pidAlive(sharedPid)).toBe(true);
      report.push(`second cluster: ${cluster.timings.toString()}`);
      report.push(`second sentinel group: ${group.timings.toString()}`);
    });
  });
});
