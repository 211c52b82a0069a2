import { IsolatedRedis, type IsolatedRedisOptions } from './isolated-redis';
import type { RedisEndpoint } from './redis-query';
import { Timings } from './timings';

/**
 * What the Redis Cluster and Sentinel fixtures share: a set of `IsolatedRedis` processes of
 * their own, each known by its port. A process is added before it starts, so `stop` also stops
 * one that failed half-way through its start.
 */
export abstract class RedisGroup {
  readonly timings = new Timings();
  protected readonly servers: IsolatedRedis[] = [];
  private stopped = false;

  /** The PIDs of this group's processes that are running now. */
  get pids(): number[] {
    return this.servers.flatMap((server) => (server.pid === undefined ? [] : [server.pid]));
  }

  /** Every port this group's processes listen on (while they run). */
  get ports(): number[] {
    return this.servers.map((server) => server.port).filter((port) => port > 0);
  }

  /** The dirs of this group's processes (`stop` deletes them). */
  get dirs(): string[] {
    return this.servers.map((server) => server.dir).filter(Boolean);
  }

  /** Kills a node of this group (SIGKILL, by the PID it was started with) and waits for its exit. */
  async kill(node: Pick<RedisEndpoint, 'port'>): Promise<void> {
    await this.timings.measure('kill', () => this.server(node).kill());
  }

  /** Stops every process of the group (SIGTERM) and deletes their dirs. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.timings.measure('stop', async () => {
      const results = await Promise.allSettled(this.servers.map((server) => server.stop()));
      const failed = results.find((result) => result.status === 'rejected');
      if (failed) throw failed.reason;
    });
  }

  /** A new process of this group, not started yet (`stop` stops it whatever happens next). */
  protected addServer(options: IsolatedRedisOptions): IsolatedRedis {
    if (this.stopped) throw new Error('This group was stopped for good');
    const server = new IsolatedRedis(options);
    this.servers.push(server);
    return server;
  }

  /** Stops a process that could not start and forgets it. */
  protected async dropServer(server: IsolatedRedis): Promise<void> {
    await server.stop();
    this.servers.splice(this.servers.indexOf(server), 1);
  }

  /** The process behind `node` (anything with the port of one of ours). */
  protected server(node: Pick<RedisEndpoint, 'port'>): IsolatedRedis {
    const server = this.servers.find((candidate) => candidate.port === node.port);
    if (!server) throw new Error(`No node of this group listens on port ${node.port}`);
    return server;
  }

  /** Restarts `node` (SIGTERM first if it runs; after `kill`, just a start) on its port. */
  protected async restartServer(node: Pick<RedisEndpoint, 'port'>): Promise<IsolatedRedis> {
    const server = this.server(node);
    await server.restart();
    return server;
  }
}
