import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { waitFor } from '../wait';
import { startEpmd } from './epmd';
import { IsolatedRabbitMQ } from './isolated-rabbitmq';
import { freePort } from './ports';
import { processesMentioning, signalProcess, waitForExit } from './process-identity';
import { CHAOS_DIR_PREFIX, reaper } from './reaper';
import type { ServiceProcess } from './service-process';
import { Timings } from './timings';

export interface RabbitMQClusterOptions {
  /** How many nodes (default 3). */
  nodes?: number;
  /** How long one node's boot may take before it fails (ms). */
  startTimeout?: number;
}

/** One node of a `RabbitMQCluster`, as the cluster sees it now. */
export interface RabbitMQClusterNode {
  /** Its place in `cluster.nodes`, the number every method of the cluster takes. */
  readonly index: number;
  /** `cogman-chaos-<hex>-<index>@localhost`. */
  readonly name: string;
  readonly amqpPort: number;
  readonly distPort: number;
  /** `amqp://guest:guest@127.0.0.1:<amqpPort>`. */
  readonly uri: string;
  /** OS PID of its Erlang VM while it runs (undefined once killed or stopped). */
  readonly pid: number | undefined;
  /** Its temp dir (mnesia, log, HOME), inside the cluster's. */
  readonly dir: string;
}

/**
 * A private RabbitMQ cluster for chaos specs, never the machine's shared broker. Each node is an
 * `IsolatedRabbitMQ` (its own name, AMQP and distribution ports, mnesia and log dirs, HOME, no
 * plugins, started with the real `rabbitmq-server` script); all of them share one private epmd
 * and one Erlang cookie of the cluster's, so they reach each other and nothing else. Node 0 boots
 * as the seed, and the others join it (`stop_app`, `join_cluster`, `start_app`).
 *
 * Nodes are numbered from 0 (`nodes[i]`, `uris[i]`, `kill(i)`). `kill`, `stopNode` and `startNode`
 * act on one node by the PID of its VM; `leaderOf`, `waitForLeader` and `runningNodes` ask a
 * running node with `rabbitmqctl`. Everything listens on 127.0.0.1.
 *
 *   const cluster = await chaos.rabbitmqCluster({ nodes: 3 });
 *   const leader = await cluster.leaderOf('orders');
 *   await cluster.kill(leader!);
 *   const next = await cluster.waitForLeader('orders', { notOn: leader });
 *   await cluster.startNode(leader!);
 */
export class RabbitMQCluster {
  readonly timings = new Timings();
  /** The cluster's temp dir: every node's dir is inside it. */
  dir = '';
  epmdPort = 0;
  private readonly size: number;
  private readonly startTimeout?: number;
  private readonly id = randomBytes(4).toString('hex');
  private members: IsolatedRabbitMQ[] = [];
  private epmd?: ServiceProcess;
  private state: 'new' | 'starting' | 'running' | 'removed' = 'new';

  constructor(options: RabbitMQClusterOptions = {}) {
    this.size = options.nodes ?? 3;
    if (!Number.isInteger(this.size) || this.size < 1) {
      throw new Error(`A cluster needs at least one node, not ${options.nodes}`);
    }
    this.startTimeout = options.startTimeout;
  }

  /** The nodes, numbered from 0 (empty before `start`). */
  get nodes(): readonly RabbitMQClusterNode[] {
    return this.members.map((member, index) => ({
      index,
      name: member.nodeName,
      amqpPort: member.amqpPort,
      distPort: member.distPort,
      uri: member.uri,
      pid: member.pid,
      dir: member.dir,
    }));
  }

  /** One AMQP URI a node, `uris[i]` for node i. */
  get uris(): string[] {
    return this.members.map((member) => member.uri);
  }

  /** PID of the cluster's epmd while it runs. */
  get epmdPid(): number | undefined {
    return this.epmd?.running ? this.epmd.pid : undefined;
  }

  /**
   * Starts the cluster's epmd, boots every node (in parallel) and joins nodes 1..n-1 to node 0;
   * resolves once every node is running in the cluster.
   */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error(`The cluster is ${this.state}`);
    this.state = 'starting';
    await this.timings.measure('start', async () => {
      this.dir = await mkdtemp(`${CHAOS_DIR_PREFIX}rabbitmq-cluster-`);
      reaper.trackDir(this.dir);
      // Every process of every node has `-home <node dir>/home`, inside this dir.
      reaper.trackCommandLine(this.dir);
      await this.startEpmd();
      const cookie = randomBytes(20).toString('hex');
      this.members = Array.from(
        { length: this.size },
        (_, index) =>
          new IsolatedRabbitMQ({
            startTimeout: this.startTimeout,
            member: {
              nodeName: `cogman-chaos-${this.id}-${index}@localhost`,
              clusterDir: this.dir,
              epmdPort: this.epmdPort,
              cookie,
            },
          }),
      );
      await this.timings.measure('boot', () => settleAll(this.members.map((m) => m.start())));
      await this.timings.measure('join', async () => {
        const [seed, ...others] = this.members;
        await settleAll(others.map((member) => member.stopApp()));
        // One at a time: each join changes the cluster's membership.
        for (const member of others) await member.ctl('join_cluster', seed.nodeName);
        await settleAll(others.map((member) => member.startApp()));
        await this.waitForRunning(this.members.map((_, index) => index));
      });
    });
    this.state = 'running';
  }

  /** Kills node `i`'s Erlang VM with SIGKILL (a crash); its data stays for `startNode`. */
  async kill(i: number): Promise<void> {
    await this.timings.measure(`kill ${i}`, () => this.member(i).kill());
  }

  /**
   * Shuts node `i` down cleanly (SIGTERM); its data stays for `startNode`. With every node down,
   * start the one stopped last first: RabbitMQ makes the others wait for it at boot.
   */
  async stopNode(i: number): Promise<void> {
    await this.timings.measure(`stopNode ${i}`, () => this.member(i).shutdown());
  }

  /**
   * Boots node `i` again after `kill` or `stopNode`, on the same ports with the same data; resolves
   * once another running node counts it among the cluster's running nodes (it has rejoined).
   */
  async startNode(i: number): Promise<void> {
    const member = this.member(i);
    await this.timings.measure(`startNode ${i}`, async () => {
      await member.start();
      await this.waitForRunning([i], i);
    });
  }

  /**
   * The indices of the nodes running in the cluster, as `cluster_status` on a running node tells
   * (a node whose VM is up but whose broker is stopped does not count).
   */
  async runningNodes(): Promise<number[]> {
    return this.running();
  }

  /**
   * The index of the node whose member of quorum queue `queue` (default vhost) is the Raft leader
   * now, from `rabbitmq-queues quorum_status` on a running node; undefined while no member leads
   * (an election under way, or no majority left). A killed member reads `nodedown`, so a dead node
   * is never named. Rejects for a queue that does not exist or is not a quorum queue.
   */
  async leaderOf(queue: string): Promise<number | undefined> {
    const output = await this.ask('rabbitmq-queues', [
      'quorum_status',
      queue,
      '--formatter',
      'json',
    ]);
    const members = JSON.parse(output) as QuorumMemberStatus[];
    // Two members may both claim to lead across a partition; the newer term wins.
    const leader = members
      .filter((member) => member['Raft State'] === 'leader')
      .sort((a, b) => Number(b.Term) - Number(a.Term))[0];
    return leader && this.indexOf(leader['Node Name']);
  }

  /**
   * Polls `leaderOf` until quorum queue `queue` has a leader (on a node other than `notOn`: the one
   * just killed or stopped, whose leadership is what is being replaced), and resolves with its
   * index; fails after `timeout` ms.
   */
  async waitForLeader(
    queue: string,
    { notOn, timeout = 30_000 }: { notOn?: number; timeout?: number } = {},
  ): Promise<number> {
    return this.timings.measure(`waitForLeader ${queue}`, async () => {
      const leader = await waitFor(
        `a leader of ${queue}${notOn === undefined ? '' : ` not on node ${notOn}`}`,
        async () => {
          const index = await this.leaderOf(queue);
          return index !== undefined && index !== notOn && { index };
        },
        { timeout, interval: 100 },
      );
      return leader.index;
    });
  }

  /** Runs `rabbitmqctl -n <node i> <args>`; resolves with its output. */
  ctl(i: number, ...args: string[]): Promise<string> {
    return this.member(i).ctl(...args);
  }

  /**
   * Runs one of RabbitMQ's CLI tools (`rabbitmq-queues`, `rabbitmq-diagnostics`, ...) against
   * node `i`; resolves with its output.
   */
  cli(i: number, tool: string, ...args: string[]): Promise<string> {
    return this.member(i).cli(tool, ...args);
  }

  /** The last lines of node `i`'s log, for failure messages. */
  logTail(i: number, lines?: number): string {
    return this.member(i).logTail(lines);
  }

  /**
   * Stops every node (cleanly, in parallel) and the epmd, and deletes the cluster's dir. Safe to
   * call twice, and on a cluster whose start failed half-way.
   */
  async stop(): Promise<void> {
    if (this.state === 'removed') return;
    await this.timings.measure('stop', async () => {
      await settleAll(this.members.map((member) => member.stop()));
      await this.epmd?.stop();
      if (this.dir) {
        // A CLI tool or a VM that escaped its node's stop still has our dir in its command line.
        for (const stray of processesMentioning(this.dir)) {
          signalProcess(stray, 'SIGKILL');
          await waitForExit(stray, `a process of the cluster ${this.id}`);
        }
        await rm(this.dir, { recursive: true, force: true });
        reaper.untrackCommandLine(this.dir);
        reaper.untrackDir(this.dir);
      }
    });
    this.state = 'removed';
  }

  private async startEpmd(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      this.epmdPort = await freePort();
      try {
        this.epmd = await startEpmd(this.epmdPort);
        return;
      } catch (error) {
        // Another program took the port between the probe and the bind: a new port, a new try.
        if (!/address already in use/.test(String(error)) || attempt === 3) throw error;
      }
    }
  }

  /** `runningNodes`, asked of a node other than `skip` where one runs. */
  private async running(skip?: number): Promise<number[]> {
    const output = await this.ask('rabbitmqctl', ['cluster_status', '--formatter', 'json'], skip);
    const status = JSON.parse(output) as {
      running_nodes: string[];
    };
    return status.running_nodes.map((name) => this.indexOf(name)).sort((a, b) => a - b);
  }

  /**
   * Polls until a running node (other than `skip`, where one runs) counts every node of `indices`
   * as running in the cluster.
   */
  private async waitForRunning(indices: number[], skip?: number): Promise<void> {
    await waitFor(
      `nodes ${indices.join(', ')} to run in the cluster`,
      async () => {
        const running = await this.running(skip);
        return indices.every((index) => running.includes(index));
      },
      { timeout: 60_000, interval: 100 },
    );
  }

  /**
   * Runs a CLI tool against the first node that answers, trying the nodes whose VM runs in order
   * (a node whose broker is stopped refuses most commands), node `skip` only if no other runs.
   */
  private async ask(tool: string, args: string[], skip?: number): Promise<string> {
    const up = this.members.filter((member) => member.pid !== undefined);
    const others = up.filter((member) => member !== this.members[skip ?? -1]);
    const candidates = others.length > 0 ? others : up;
    if (candidates.length === 0) throw new Error('No node of the cluster is running');
    let last: unknown;
    for (const member of candidates) {
      try {
        return await member.cli(tool, ...args);
      } catch (error) {
        last = error;
      }
    }
    throw last;
  }

  private member(i: number): IsolatedRabbitMQ {
    const member = this.members[i];
    if (!member) throw new Error(`No node ${i} in a cluster of ${this.members.length}`);
    return member;
  }

  private indexOf(nodeName: string): number {
    const index = this.members.findIndex((member) => member.nodeName === nodeName);
    if (index < 0) throw new Error(`${nodeName} is not a node of this cluster`);
    return index;
  }
}

/** A row of `rabbitmq-queues quorum_status --formatter json`. */
interface QuorumMemberStatus {
  'Node Name': string;
  /** `leader`, `follower`, `candidate`, `pre_vote`..., or `["nodedown", <node>]`. */
  'Raft State': string | string[];
  Term: number | string;
}

/** Waits for every promise to settle, then rejects with the first failure, if any. */
async function settleAll(promises: Promise<unknown>[]): Promise<void> {
  const failures = (await Promise.allSettled(promises)).filter(
    (outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected',
  );
  if (failures.length === 1) throw failures[0].reason;
  if (failures.length > 1) {
    throw new AggregateError(
      failures.map((failure) => failure.reason as unknown),
      failures.map((failure) => String(failure.reason)).join('\n'),
    );
  }
}
