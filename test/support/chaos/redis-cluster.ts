import type { Redis } from 'ioredis';
import { within, waitFor } from '../wait';
import type { IsolatedRedis } from './isolated-redis';
import { freePort } from './ports';
import { RedisGroup } from './redis-group';
import { parseInfo, queryRedis, type RedisEndpoint, type RedisRole } from './redis-query';
import { ServiceProcess } from './service-process';

export const CLUSTER_SLOTS = 16_384;
const MASTERS = 3;
const NODES = MASTERS * 2;

export interface RedisClusterOptions {
  /** Each node's persistence, as for `IsolatedRedis` ('none' by default). */
  persistence?: 'aof' | 'none';
  /**
   * `cluster-node-timeout`, ms (1000 by default): how long a node may not answer before the
   * others mark it failed and one of its replicas takes over.
   */
  nodeTimeout?: number;
}

/** A node of the cluster, as the cluster saw it when the fixture last looked. */
export interface RedisClusterNode extends RedisEndpoint {
  /** The redis-server's PID; undefined while the node is down. */
  pid: number | undefined;
  /** The cluster bus port (`--cluster-port`). */
  busPort: number;
  /** The node ID (`CLUSTER MYID`). */
  id: string;
  role: RedisRole;
  /** A replica's master, by port. */
  masterPort?: number;
  /** The slot ranges a master serves, `[first, last]` both included; empty for a replica. */
  slots: [number, number][];
  /** Its dir (`nodes.conf`, and the AOF with `persistence: 'aof'`). */
  dir: string;
}

/** A line of `CLUSTER NODES`. */
interface NodeLine {
  id: string;
  port: number;
  flags: string[];
  masterId?: string;
  configEpoch: number;
  connected: boolean;
  slots: [number, number][];
}

/** What one live node says: its `CLUSTER NODES`, `CLUSTER INFO` and `INFO replication`. */
interface Observation {
  port: number;
  lines: NodeLine[];
  info: Record<string, string>;
  replication: Record<string, string>;
}

function parseNodes(text: string): NodeLine[] {
  return text
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [id, address, flags, master, , , epoch, link, ...slots] = line.trim().split(' ');
      return {
        id,
        port: Number(address.slice(address.lastIndexOf(':') + 1, address.indexOf('@'))),
        flags: flags.split(','),
        masterId: master === '-' ? undefined : master,
        configEpoch: Number(epoch),
        connected: link === 'connected',
        // `[slot->-id]` and `[slot-<-id]` are slots being migrated: not served yet.
        slots: slots
          .filter((range) => !range.startsWith('['))
          .map((range) => {
            const [first, last = first] = range.split('-').map(Number);
            return [first, last] as [number, number];
          }),
      };
    });
}

const serves = (line: NodeLine, slot: number) =>
  line.slots.some(([first, last]) => first <= slot && slot <= last);

/** A node's role, master and slots, to compare what the nodes say about it. */
const signature = (line: NodeLine) =>
  `${line.flags.includes('master') ? 'master' : 'replica'} ${line.masterId ?? '-'} ${JSON.stringify(line.slots)}`;

/**
 * A private Redis Cluster on loopback: six `redis-server` processes (`IsolatedRedis`, each with
 * its own ports and dir), made into three masters with one replica each by
 * `redis-cli --cluster create`. Its methods wait with polls that end in an error naming what was
 * not yet true. A client needs longer retries than ioredis's defaults to outlast a failover
 * (DEVELOPERS.md, "Chaos tests").
 *
 *   const cluster = await chaos.redisCluster();
 *   const client = new Cluster(cluster.startupNodes, { retryDelayOnFailover: 200, ... });
 *   const master = await cluster.masterOf('some-key');
 *   await cluster.kill(master);
 *   const promoted = await cluster.waitForFailover('some-key');
 *   const back = await cluster.restart(master); // back.role === 'replica'
 */
export class RedisCluster extends RedisGroup {
  readonly persistence: 'aof' | 'none';
  readonly nodeTimeout: number;
  private readonly busPorts = new Map<IsolatedRedis, number>();
  private known: RedisClusterNode[] = [];

  constructor(options: RedisClusterOptions = {}) {
    super();
    this.persistence = options.persistence ?? 'none';
    this.nodeTimeout = options.nodeTimeout ?? 1000;
  }

  /** `[{ host, port }]` of every node, for ioredis's `new Cluster(startupNodes, options)`. */
  get startupNodes(): RedisEndpoint[] {
    return this.servers.map((server) => ({ host: '127.0.0.1', port: server.port }));
  }

  /** Every port the nodes listen on while they run: their client ports and bus ports. */
  override get ports(): number[] {
    return [...super.ports, ...this.servers.map((server) => this.busPorts.get(server)!)];
  }

  /**
   * The six nodes as the fixture last saw them (at `start`, and at each `masterOf`,
   * `waitForFailover`, `restart` and `refresh`); the PIDs are current. Roles change on a
   * failover: call `refresh()` for what the cluster says now.
   */
  get nodes(): RedisClusterNode[] {
    return this.known.map((node) => ({ ...node, pid: this.server(node).pid }));
  }

  /** Starts the six nodes, creates the cluster and waits until every slot is served. */
  async start(): Promise<void> {
    if (this.servers.length > 0) throw new Error('This cluster was started already');
    await this.timings.measure('start', async () => {
      await Promise.all(Array.from({ length: NODES }, () => this.startNode()));
      await this.create();
      this.known = await waitFor(
        'the new cluster to serve every slot, with 3 masters and 3 replicas',
        async () => {
          const nodes = await this.settled();
          const masters = nodes.filter((node) => node.role === 'master');
          if (nodes.some((node) => node.pid === undefined) || masters.length !== MASTERS) {
            throw new Error(`not every node is in: ${JSON.stringify(nodes)}`);
          }
          return nodes;
        },
        { timeout: 60_000, interval: 100 },
      );
    });
  }

  /** The slot of `key` (`CLUSTER KEYSLOT`, asked of a live node). */
  async slotOf(key: string): Promise<number> {
    return this.ask((client) => client.cluster('KEYSLOT', key));
  }

  /**
   * The master serving `slotOrKey` now: of the masters the live nodes list for that slot, the
   * one with the highest config epoch (as the cluster resolves a conflict). During a failover it
   * may still be the master just killed.
   */
  async masterOf(slotOrKey: number | string): Promise<RedisClusterNode> {
    const slot = typeof slotOrKey === 'number' ? slotOrKey : await this.slotOf(slotOrKey);
    const observations = await this.observe();
    const claims = observations
      .flatMap((observation) => observation.lines)
      .filter((line) => line.flags.includes('master') && serves(line, slot))
      .sort((a, b) => b.configEpoch - a.configEpoch);
    if (claims.length === 0) throw new Error(`No node serves slot ${slot}`);
    this.known = this.describe(observations);
    return this.nodeOn(claims[0].port);
  }

  /**
   * Waits until the cluster is whole again after a master was killed: every slot served by a
   * live master that all live nodes agree on, `cluster_state:ok` on each, every live replica
   * linked to its master. Resolves with the master serving `slotOrKey` then: the replica
   * promoted in place of the killed master of that slot. (Called with nothing killed, it
   * resolves with the current master at once.)
   */
  async waitForFailover(
    slotOrKey: number | string,
    { timeout = 30_000 }: { timeout?: number } = {},
  ): Promise<RedisClusterNode> {
    const slot = typeof slotOrKey === 'number' ? slotOrKey : await this.slotOf(slotOrKey);
    return this.timings.measure('failover', async () => {
      this.known = await waitFor(`a live master for slot ${slot}`, () => this.settled(), {
        timeout,
        interval: 100,
      });
      return this.masterOf(slot);
    });
  }

  /**
   * Starts `node` again on its ports, with its dir (`nodes.conf`: it rejoins as the same node;
   * its data only with `persistence: 'aof'`), SIGTERM first if it runs. Resolves once the
   * cluster is whole with it in (a replica linked to its master), with the role the cluster gave
   * it: a master killed and failed over comes back as a replica of the node promoted in its
   * place. (A master restarted before its failover comes back a master, with `persistence:
   * 'none'` an empty one.)
   */
  async restart(
    node: Pick<RedisEndpoint, 'port'>,
    { timeout = 30_000 }: { timeout?: number } = {},
  ): Promise<RedisClusterNode> {
    return this.timings.measure('restart', async () => {
      await this.restartServer(node);
      this.known = await waitFor(`the node on port ${node.port} to rejoin`, () => this.settled(), {
        timeout,
        interval: 100,
      });
      return this.nodeOn(node.port);
    });
  }

  /** The nodes as the cluster sees them now (and `nodes` is updated). */
  async refresh(): Promise<RedisClusterNode[]> {
    this.known = this.describe(await this.observe());
    return this.nodes;
  }

  private async startNode(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const busPort = await freePort();
      const server = this.addServer({
        persistence: this.persistence,
        label: 'redis-server (cluster)',
        args: [
          '--cluster-enabled', 'yes',
          // Relative to --dir: each node's own.
          '--cluster-config-file', 'nodes.conf',
          '--cluster-node-timeout', String(this.nodeTimeout),
          // Not port + 10000, which may be in the kernel's ephemeral range.
          '--cluster-port', String(busPort),
          // A replica's full sync starts at once (the 7.0 default waits 5 s for others).
          '--repl-diskless-sync-delay', '0',
        ],
      }); // prettier-ignore
      this.busPorts.set(server, busPort);
      try {
        return await server.start();
      } catch (error) {
        // Another program took the bus port between the probe and the bind: try another.
        if (!/\(cluster\), aborting/.test(String(error)) || attempt === 3) throw error;
        await this.dropServer(server);
      }
    }
  }

  private async create(): Promise<void> {
    const create = ServiceProcess.spawn('redis-cli --cluster create', 'redis-cli', [
      '--cluster', 'create',
      ...this.servers.map((server) => `127.0.0.1:${server.port}`),
      '--cluster-replicas', '1',
      '--cluster-yes',
    ]); // prettier-ignore
    try {
      const { code } = await within('redis-cli --cluster create', create.exited, 60_000);
      if (code !== 0) throw new Error(`exit code ${code}`);
    } catch (error) {
      throw new Error(`redis-cli --cluster create failed (${String(error)}):\n${create.output()}`);
    } finally {
      await create.kill();
    }
  }

  /** Runs `query` on the first live node that answers. */
  private async ask<T>(query: (client: Redis) => Promise<T>): Promise<T> {
    let last: unknown = new Error('No node of the cluster is up');
    for (const server of this.servers.filter((candidate) => candidate.pid !== undefined)) {
      try {
        return await queryRedis(server.port, query);
      } catch (error) {
        last = error;
      }
    }
    throw last;
  }

  /** What every live node says (rejects if one does not answer). */
  private observe(): Promise<Observation[]> {
    const live = this.servers.filter((server) => server.pid !== undefined);
    return Promise.all(
      live.map((server) =>
        queryRedis(server.port, async (client) => ({
          port: server.port,
          lines: parseNodes(String(await client.cluster('NODES'))),
          info: parseInfo(String(await client.cluster('INFO'))),
          replication: parseInfo(await client.info('replication')),
        })),
      ),
    );
  }

  /**
   * The nodes if the cluster is whole, else a rejection saying what is not: each live node
   * reports `cluster_state:ok` with every slot ok and knows all six; the live nodes all see each
   * other connected and agree on each one's role, master and slots; every slot is served by a
   * live master; every live replica's link to its master is up.
   */
  private async settled(): Promise<RedisClusterNode[]> {
    const observations = await this.observe();
    const livePorts = new Set(observations.map((observation) => observation.port));
    const consensus = new Map<number, string>();
    for (const { port, lines, info, replication } of observations) {
      const where = `node ${port}`;
      if (info.cluster_state !== 'ok')
        throw new Error(`${where}: cluster_state:${info.cluster_state}`);
      if (Number(info.cluster_slots_ok) !== CLUSTER_SLOTS) {
        throw new Error(`${where}: cluster_slots_ok:${info.cluster_slots_ok}`);
      }
      if (Number(info.cluster_known_nodes) !== this.servers.length) {
        throw new Error(`${where}: cluster_known_nodes:${info.cluster_known_nodes}`);
      }
      if (replication.role === 'slave' && replication.master_link_status !== 'up') {
        throw new Error(`${where}: replica link ${replication.master_link_status}`);
      }
      for (const livePort of livePorts) {
        const line = lines.find((candidate) => candidate.port === livePort);
        if (!line) throw new Error(`${where} does not list node ${livePort}`);
        const self = line.flags.includes('myself');
        if (
          !self &&
          (!line.connected || line.flags.some((flag) => /fail|handshake|noaddr/.test(flag)))
        ) {
          throw new Error(`${where} sees node ${livePort} as ${line.flags.join(',')}`);
        }
        const seen = signature(line);
        const before = consensus.get(livePort) ?? seen;
        if (seen !== before) throw new Error(`node ${livePort}: ${seen} or ${before}?`);
        consensus.set(livePort, seen);
      }
    }
    const nodes = this.describe(observations);
    const served = nodes
      .filter((node) => node.role === 'master' && livePorts.has(node.port))
      .flatMap((node) => node.slots)
      .reduce((sum, [first, last]) => sum + last - first + 1, 0);
    if (served !== CLUSTER_SLOTS) throw new Error(`live masters serve ${served} slots`);
    return nodes;
  }

  /** Every node, from its own line where it is live, else as the first live node lists it. */
  private describe(observations: Observation[]): RedisClusterNode[] {
    const ports = new Map<string, number>();
    for (const line of observations.flatMap((observation) => observation.lines)) {
      ports.set(line.id, line.port);
    }
    return this.servers.map((server) => {
      const own = observations
        .find((observation) => observation.port === server.port)
        ?.lines.find((line) => line.flags.includes('myself'));
      const line =
        own ??
        observations
          .map((observation) => observation.lines.find((other) => other.port === server.port))
          .find((found) => found !== undefined);
      const before = this.known.find((node) => node.port === server.port);
      const role: RedisRole | undefined = line
        ? line.flags.includes('master')
          ? 'master'
          : 'replica'
        : before?.role;
      return {
        host: '127.0.0.1',
        port: server.port,
        pid: server.pid,
        busPort: this.busPorts.get(server)!,
        id: line?.id ?? before?.id ?? '',
        role: role ?? 'master',
        masterPort: line
          ? line.masterId
            ? ports.get(line.masterId)
            : undefined
          : before?.masterPort,
        slots: line?.slots ?? before?.slots ?? [],
        dir: server.dir,
      };
    });
  }

  private nodeOn(port: number): RedisClusterNode {
    const node = this.nodes.find((candidate) => candidate.port === port);
    if (!node) throw new Error(`No node of this cluster listens on port ${port}`);
    return node;
  }
}
