import type { Redis } from 'ioredis';
import { waitFor } from '../wait';
import type { IsolatedRedis } from './isolated-redis';
import { RedisGroup } from './redis-group';
import {
  queryRedis,
  replicationInfo,
  type RedisEndpoint,
  type RedisRole,
  type ReplicationInfo,
} from './redis-query';

const REPLICAS = 2;
const SENTINELS = 3;
const QUORUM = 2;

export interface RedisSentinelOptions {
  /** The data nodes' persistence, as for `IsolatedRedis` ('none' by default). */
  persistence?: 'aof' | 'none';
  /** The name the sentinels monitor the master under ('cogman-chaos' by default). */
  name?: string;
  /** `down-after-milliseconds` (1000 by default): how long a silent master has until SDOWN. */
  downAfter?: number;
  /** `failover-timeout`, ms (5000 by default); a failed failover is retried after twice that. */
  failoverTimeout?: number;
}

/** A data node (master or replica), as the fixture last saw it. */
export interface RedisSentinelNode extends RedisEndpoint {
  /** The redis-server's PID; undefined while the node is down. */
  pid: number | undefined;
  role: RedisRole;
  /** A replica's master, by port. */
  masterPort?: number;
  /** Its dir, with `redis.conf` (rewritten by the sentinels' REPLICAOF) and any AOF. */
  dir: string;
}

/** `SENTINEL MASTER|REPLICAS|SENTINELS` give each instance as a flat [field, value, ...] list. */
function record(fields: unknown): Record<string, string> {
  const list = fields as string[];
  const result: Record<string, string> = {};
  for (let i = 0; i + 1 < list.length; i += 2) result[list[i]] = list[i + 1];
  return result;
}

/** What one live sentinel says about the monitored master. */
interface SentinelView {
  port: number;
  masterPort: number;
  master: Record<string, string>;
  replicas: Record<string, string>[];
  sentinels: Record<string, string>[];
}

/**
 * A private Redis Sentinel group on loopback: a master and two replicas (`IsolatedRedis`, each
 * with a `redis.conf` of its own, the replicas' holding `replicaof`), and three sentinels
 * (`redis-server <sentinel.conf> --sentinel`, each conf its own, which the sentinel rewrites with
 * what it learns) monitoring the master with a quorum of 2. Its methods wait with polls that end
 * in an error naming what was not yet true. ioredis's reconnection defaults outlast a failover
 * here (DEVELOPERS.md, "Chaos tests").
 *
 *   const group = await chaos.redisSentinel();
 *   const client = new Redis({ sentinels: group.sentinels, name: group.name });
 *   const old = await group.killMaster();
 *   const promoted = await group.waitForNewMaster(old);
 *   const back = await group.restart(old); // back.role === 'replica'
 */
export class RedisSentinelGroup extends RedisGroup {
  readonly persistence: 'aof' | 'none';
  readonly name: string;
  readonly downAfter: number;
  readonly failoverTimeout: number;
  private readonly data: IsolatedRedis[] = [];
  private readonly watchers: IsolatedRedis[] = [];
  private known: RedisSentinelNode[] = [];

  constructor(options: RedisSentinelOptions = {}) {
    super();
    this.persistence = options.persistence ?? 'none';
    this.name = options.name ?? 'cogman-chaos';
    this.downAfter = options.downAfter ?? 1000;
    this.failoverTimeout = options.failoverTimeout ?? 5000;
  }

  /** `[{ host, port }]` of the sentinels, for ioredis's `new Redis({ sentinels, name })`. */
  get sentinels(): RedisEndpoint[] {
    return this.watchers.map((sentinel) => ({ host: '127.0.0.1', port: sentinel.port }));
  }

  /** The sentinel processes: their ports, PIDs (undefined while down) and dirs (`redis.conf`). */
  get sentinelNodes(): (RedisEndpoint & { pid: number | undefined; dir: string })[] {
    return this.watchers.map((sentinel) => ({
      host: '127.0.0.1',
      port: sentinel.port,
      pid: sentinel.pid,
      dir: sentinel.dir,
    }));
  }

  /**
   * The master and replicas as the fixture last saw them (at `start`, `waitForNewMaster`,
   * `restart` and `refresh`); the PIDs are current. Call `refresh()` for the roles now.
   */
  get nodes(): RedisSentinelNode[] {
    return this.known.map((node) => ({ ...node, pid: this.server(node).pid }));
  }

  /**
   * Starts the master, then its replicas, then the sentinels, and waits until every sentinel
   * sees the master, both replicas linked to it, and the other two sentinels.
   */
  async start(): Promise<void> {
    if (this.data.length > 0) throw new Error('This group was started already');
    await this.timings.measure('start', async () => {
      const master = await this.startData('');
      await Promise.all(
        Array.from({ length: REPLICAS }, () =>
          this.startData(`replicaof 127.0.0.1 ${master.port}\n`),
        ),
      );
      await Promise.all(
        Array.from({ length: SENTINELS }, () => {
          const sentinel = this.addServer({
            label: 'redis-sentinel',
            config: [
              `sentinel monitor ${this.name} 127.0.0.1 ${master.port} ${QUORUM}`,
              `sentinel down-after-milliseconds ${this.name} ${this.downAfter}`,
              `sentinel failover-timeout ${this.name} ${this.failoverTimeout}`,
              `sentinel parallel-syncs ${this.name} 1`,
              '',
            ].join('\n'),
            args: ['--sentinel'],
          });
          this.watchers.push(sentinel);
          return sentinel.start();
        }),
      );
      this.known = await waitFor(
        'the sentinels to see the master, its replicas and each other',
        () => this.settled(),
      );
    });
  }

  /**
   * The master the sentinels name now (`SENTINEL get-master-addr-by-name`), as a majority of
   * them (2 of 3) report it; rejects if no majority agrees, as during a failover.
   */
  async master(): Promise<RedisSentinelNode> {
    const answers = await Promise.allSettled(
      this.watchers
        .filter((sentinel) => sentinel.pid !== undefined)
        .map((sentinel) => queryRedis(sentinel.port, (client) => this.masterAddress(client))),
    );
    const ports = answers.flatMap((answer) =>
      answer.status === 'fulfilled' ? [answer.value] : [],
    );
    const port = ports.find((candidate) => ports.filter((p) => p === candidate).length >= QUORUM);
    if (port === undefined)
      throw new Error(`The sentinels name no master by majority: ${ports.join(', ')}`);
    return this.describe(this.server({ port }), { role: 'master', linkUp: false });
  }

  /** Kills the master the sentinels name (SIGKILL); resolves with it as it was (its PID then). */
  async killMaster(): Promise<RedisSentinelNode> {
    const master = await this.master();
    await this.kill(master);
    return master;
  }

  /**
   * Waits until the failover away from `old` is over: every live sentinel names the same new
   * master, none reports a failover in progress or the master down, the new master says it is
   * one, and every live replica is linked to it and listed as healthy by every sentinel.
   * Resolves with the new master.
   */
  async waitForNewMaster(
    old: Pick<RedisEndpoint, 'port'>,
    { timeout = 60_000 }: { timeout?: number } = {},
  ): Promise<RedisSentinelNode> {
    return this.timings.measure('failover', async () => {
      this.known = await waitFor(
        `a new master in place of ${old.port}`,
        async () => {
          const nodes = await this.settled();
          const master = nodes.find((node) => node.role === 'master' && node.pid !== undefined)!;
          if (master.port === old.port) throw new Error(`the master is still ${old.port}`);
          return nodes;
        },
        { timeout, interval: 100 },
      );
      return this.nodes.find((node) => node.role === 'master' && node.pid !== undefined)!;
    });
  }

  /**
   * Starts a data node again on its port with its dir (SIGTERM first if it runs) and waits until
   * the group is whole with it in. A master killed and failed over starts as a master (its
   * `redis.conf` says nothing else) and the sentinels then turn it into a replica of the new one
   * (they wait ~8 s before they do); it resolves once it is linked: role 'replica'. With
   * `persistence: 'none'` it comes back empty and resyncs.
   */
  async restart(
    node: Pick<RedisEndpoint, 'port'>,
    { timeout = 60_000 }: { timeout?: number } = {},
  ): Promise<RedisSentinelNode> {
    if (!this.data.includes(this.server(node))) throw new Error(`${node.port} is a sentinel`);
    return this.timings.measure('restart', async () => {
      await this.restartServer(node);
      this.known = await waitFor(`the node on port ${node.port} to rejoin`, () => this.settled(), {
        timeout,
        interval: 100,
      });
      return this.nodes.find((candidate) => candidate.port === node.port)!;
    });
  }

  /** Starts a sentinel again (its conf holds what it had learnt) and waits until it is back in. */
  async restartSentinel(sentinel: Pick<RedisEndpoint, 'port'>): Promise<void> {
    if (!this.watchers.includes(this.server(sentinel))) {
      throw new Error(`${sentinel.port} is not a sentinel`);
    }
    await this.timings.measure('restart sentinel', async () => {
      await this.restartServer(sentinel);
      this.known = await waitFor(`the sentinel on ${sentinel.port} to rejoin`, () =>
        this.settled(),
      );
    });
  }

  /** The data nodes as they say now (`INFO replication`; a node down keeps its last role). */
  async refresh(): Promise<RedisSentinelNode[]> {
    this.known = await Promise.all(
      this.data.map(async (server) => {
        if (server.pid === undefined) return this.nodes.find((node) => node.port === server.port)!;
        return this.describe(server, await replicationInfo(server.port));
      }),
    );
    return this.nodes;
  }

  private async startData(config: string): Promise<IsolatedRedis> {
    const server = this.addServer({
      persistence: this.persistence,
      config,
      // A replica's full sync starts at once (the 7.0 default waits 5 s for others).
      args: ['--repl-diskless-sync-delay', '0'],
    });
    this.data.push(server);
    await server.start();
    return server;
  }

  private async masterAddress(client: Redis): Promise<number> {
    const address = (await client.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', this.name)) as
      string[] | null;
    if (!address) throw new Error(`The sentinel does not know ${this.name}`);
    return Number(address[1]);
  }

  private describe(server: IsolatedRedis, replication: ReplicationInfo): RedisSentinelNode {
    return {
      host: '127.0.0.1',
      port: server.port,
      pid: server.pid,
      role: replication.role,
      masterPort: replication.masterPort,
      dir: server.dir,
    };
  }

  /**
   * The data nodes if the group is whole, else a rejection saying what is not: every live
   * sentinel names the same master, flagged plain `master` (not down, no failover in
   * progress), lists every live replica as a healthy replica of it and every other live
   * sentinel as healthy, and knows all the other sentinels; that master is live and a master;
   * every other live data node is its replica, linked.
   */
  private async settled(): Promise<RedisSentinelNode[]> {
    const liveSentinels = this.watchers.filter((sentinel) => sentinel.pid !== undefined);
    const views: SentinelView[] = await Promise.all(
      liveSentinels.map((sentinel) =>
        queryRedis(sentinel.port, async (client) => ({
          port: sentinel.port,
          masterPort: await this.masterAddress(client),
          master: record(await client.call('SENTINEL', 'MASTER', this.name)),
          replicas: ((await client.call('SENTINEL', 'REPLICAS', this.name)) as unknown[]).map(
            record,
          ),
          sentinels: ((await client.call('SENTINEL', 'SENTINELS', this.name)) as unknown[]).map(
            record,
          ),
        })),
      ),
    );
    const masterPort = views[0]?.masterPort;
    if (masterPort === undefined) throw new Error('no sentinel is up');
    const liveData = this.data.filter((server) => server.pid !== undefined);
    const roles = await Promise.all(liveData.map((server) => replicationInfo(server.port)));
    for (const view of views) {
      const where = `sentinel ${view.port}`;
      if (view.masterPort !== masterPort) {
        throw new Error(`${where} names ${view.masterPort}, another ${masterPort}`);
      }
      if (Number(view.master['num-other-sentinels']) !== SENTINELS - 1) {
        throw new Error(`${where} knows ${view.master['num-other-sentinels']} other sentinels`);
      }
      if (/down|disconnected|failover|promoted|reconf/.test(view.master.flags)) {
        throw new Error(`${where}: master ${view.master.flags}`);
      }
      // Their roles and links come from the nodes themselves (below): a sentinel refreshes what
      // it knows of a replica every 10 s only.
      for (const server of liveData.filter((candidate) => candidate.port !== masterPort)) {
        const replica = view.replicas.find((entry) => Number(entry.port) === server.port);
        if (!replica || /down|disconnected/.test(replica.flags)) {
          throw new Error(`${where} sees replica ${server.port} as ${replica?.flags ?? 'unknown'}`);
        }
      }
      for (const other of liveSentinels.filter((candidate) => candidate.port !== view.port)) {
        const entry = view.sentinels.find((candidate) => Number(candidate.port) === other.port);
        if (!entry || /s_down|o_down|disconnected/.test(entry.flags)) {
          throw new Error(`${where} sees sentinel ${other.port} as ${entry?.flags ?? 'unknown'}`);
        }
      }
    }
    liveData.forEach((server, index) => {
      const { role, masterPort: follows, linkUp } = roles[index];
      const isMaster = server.port === masterPort;
      if (isMaster && role !== 'master')
        throw new Error(`${server.port} is named master but is a ${role}`);
      if (!isMaster && (role !== 'replica' || follows !== masterPort || !linkUp)) {
        throw new Error(
          `${server.port} is a ${role} of ${follows}, link ${linkUp ? 'up' : 'down'}`,
        );
      }
    });
    if (!liveData.some((server) => server.port === masterPort)) {
      throw new Error(`the master the sentinels name (${masterPort}) is down`);
    }
    return this.data.map((server) => {
      const index = liveData.indexOf(server);
      if (index >= 0) return this.describe(server, roles[index]);
      const before = this.known.find((node) => node.port === server.port);
      return this.describe(server, {
        role: before?.role ?? 'replica',
        masterPort: before?.masterPort,
        linkUp: false,
      });
    });
  }
}
