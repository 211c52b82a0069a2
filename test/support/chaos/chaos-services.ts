import { IsolatedFerretDB } from './isolated-ferretdb';
import { IsolatedRabbitMQ, type IsolatedRabbitMQOptions } from './isolated-rabbitmq';
import { IsolatedRedis, type IsolatedRedisOptions } from './isolated-redis';
import { RabbitMQCluster, type RabbitMQClusterOptions } from './rabbitmq-cluster';
import { reaper } from './reaper';
import { RedisCluster, type RedisClusterOptions } from './redis-cluster';
import { RedisSentinelGroup, type RedisSentinelOptions } from './redis-sentinel';
import { TcpProxy } from './tcp-proxy';

interface Stoppable {
  stop(): Promise<void>;
}

/**
 * What a chaos spec starts, stopped together. Create one per spec file and call `stopAll` in
 * `afterAll`; every service is registered before it starts, so one that fails half-way through
 * its start is stopped too. If the test process dies first, the reaper's watchdog kills what is
 * left (see reaper.ts).
 *
 *   const chaos = new ChaosServices();
 *   afterAll(() => chaos.stopAll());
 *   const broker = await chaos.rabbitmq();
 */
export class ChaosServices {
  private readonly started: Stoppable[] = [];

  /** A private RabbitMQ node, started. */
  async rabbitmq(options?: IsolatedRabbitMQOptions): Promise<IsolatedRabbitMQ> {
    return this.start(new IsolatedRabbitMQ(options));
  }

  /** A private RabbitMQ cluster (three nodes unless `nodes` says otherwise), started. */
  async rabbitmqCluster(options?: RabbitMQClusterOptions): Promise<RabbitMQCluster> {
    return this.start(new RabbitMQCluster(options));
  }

  /** A private Redis, started. */
  async redis(options?: IsolatedRedisOptions): Promise<IsolatedRedis> {
    return this.start(new IsolatedRedis(options));
  }

  /** A private Redis Cluster (3 masters, 3 replicas), started and serving every slot. */
  async redisCluster(options?: RedisClusterOptions): Promise<RedisCluster> {
    return this.start(new RedisCluster(options));
  }

  /** A private Redis Sentinel group (a master, 2 replicas, 3 sentinels), started. */
  async redisSentinel(options?: RedisSentinelOptions): Promise<RedisSentinelGroup> {
    return this.start(new RedisSentinelGroup(options));
  }

  /** A private FerretDB, started. */
  async ferretdb(): Promise<IsolatedFerretDB> {
    return this.start(new IsolatedFerretDB());
  }

  /** A TCP proxy to `target` (an isolated service, or anything on loopback). */
  async proxy(target: { host?: string; port: number }): Promise<TcpProxy> {
    const proxy = await TcpProxy.start(target);
    this.started.push({ stop: () => proxy.close() });
    return proxy;
  }

  /** Stops everything, newest first, even when some stops fail; then rethrows the failures. */
  async stopAll(): Promise<void> {
    const failures: unknown[] = [];
    for (const service of this.started.splice(0).reverse()) {
      try {
        await service.stop();
      } catch (error) {
        failures.push(error);
      }
    }
    reaper.release();
    if (failures.length === 1) throw failures[0];
    if (failures.length > 1) throw new AggregateError(failures, 'Some chaos services did not stop');
  }

  private async start<T extends Stoppable & { start(): Promise<void> }>(service: T): Promise<T> {
    this.started.push(service);
    await service.start();
    return service;
  }
}
