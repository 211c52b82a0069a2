import { Logger, type Provider } from '@nestjs/common';
import { EventEmitter } from 'node:events';
import { Redis, type Cluster, type ClusterOptions, type RedisOptions } from 'ioredis';
import { RESOLVED_OPTIONS, type RedisSource, type ResolvedCogmanOptions } from '../config';
import { StoreUnavailableError } from '../errors';

/** Cogman's own ioredis client; CogmanLifecycle closes it after Cogman's last write. */
export const COGMAN_REDIS = Symbol('cogman:redis');

/** Cogman's client: one node (or a Sentinel group's master), or a Redis Cluster. */
export type CogmanRedis = Redis | Cluster;

/** How long a command may go unanswered before its connection is dropped and made again. */
const SOCKET_TIMEOUT = 5000;

/**
 * What Cogman sets on every connection of its own, whatever it was given: the options of the
 * application's client are kept (host, password, TLS, sentinels, …), these replace theirs.
 */
const CONNECTION: RedisOptions = {
  // No auto-pipelining: the task log already sends a tick's changes as one call, and an
  // auto-pipeline builds a Pipeline object (a copy of every command) per tick.
  enableAutoPipelining: false,
  // Through an outage, commands wait for the connection and run in order when it returns
  // (TaskLog decides who waits for them); reconnection goes on, backing off to 2 s.
  maxRetriesPerRequest: null,
  enableOfflineQueue: true,
  autoResendUnfulfilledCommands: true,
  commandTimeout: undefined,
  // A connection that stops answering (a network cut) is dropped and reconnected.
  socketTimeout: SOCKET_TIMEOUT,
  // Closing a connection that never came up should not keep the process alive for long.
  disconnectTimeout: 200,
};

/** A single node's or a Sentinel group's client: Cogman's settings, and its master only. */
const NODE: RedisOptions = {
  ...CONNECTION,
  connectionName: 'cogman',
  // Connect on first use, so that a boot that fails earlier leaves nothing open.
  lazyConnect: true,
  // ioredis's default, but never one that gives up.
  retryStrategy: (times) => Math.min(times * 50, 2000),
  readOnly: false,
  role: 'master',
};

/**
 * Failover settings of Cogman's Cluster client. Until a replica takes over the slots of a master
 * that died, a command for them fails with "Connection is closed.", MOVED or CLUSTERDOWN; ioredis
 * retries it after these delays, refreshing its slot map, and gives up after `maxRedirections`
 * tries. The defaults (100 ms, 100 ms, 16 tries) give up about 1 s into a failover; these
 * hold a command for about a minute (a production cluster's `cluster-node-timeout` is 15 s).
 * Values the application set higher are kept.
 */
export const CLUSTER_FAILOVER = {
  retryDelayOnFailover: 200,
  retryDelayOnClusterDown: 200,
  maxRedirections: 300,
} as const;

export const redisConnectionProvider: Provider = {
  provide: COGMAN_REDIS,
  inject: [RESOLVED_OPTIONS],
  useFactory: (options: ResolvedCogmanOptions) => {
    const client = createCogmanRedis(options.redis);
    watchConnection(client);
    return client;
  },
};

/**
 * Cogman's own client for a source: from a URI or options, a new one; from an application's
 * client, a copy (`duplicate()`) with Cogman's settings, which Cogman owns and closes.
 */
export function createCogmanRedis(source: RedisSource): CogmanRedis {
  switch (source.kind) {
    case 'uri':
      return new Redis(source.uri, NODE);
    case 'options':
      return new Redis({ ...source.options, ...NODE });
    case 'client':
      return source.client.duplicate(NODE);
    case 'cluster':
      return source.client.duplicate([], clusterOptions(source.client.options));
  }
}

function clusterOptions(given: ClusterOptions): ClusterOptions {
  const atLeast = (setting: keyof typeof CLUSTER_FAILOVER) =>
    Math.max(given[setting] ?? 0, CLUSTER_FAILOVER[setting]);
  return {
    ...given,
    lazyConnect: true,
    enableAutoPipelining: false,
    enableOfflineQueue: true,
    // Reads go to masters: a replica may not have a status change yet.
    scaleReads: 'master',
    // ioredis's default, but never one that gives up.
    clusterRetryStrategy: (times) => Math.min(100 + times * 2, 2000),
    retryDelayOnFailover: atLeast('retryDelayOnFailover'),
    retryDelayOnClusterDown: atLeast('retryDelayOnClusterDown'),
    maxRedirections: atLeast('maxRedirections'),
    redisOptions: { ...given.redisOptions, ...CONNECTION, connectionName: 'cogman' },
  };
}

export function isCluster(client: CogmanRedis): client is Cluster {
  return client.isCluster;
}

/**
 * Calls `listener` whenever Redis may have lost data Cogman wrote: each time the client
 * (re)connects (a Redis restarted without its data, a Sentinel failover), and, in a Cluster, each
 * time a node leaves the slot map while the client runs (a failover: the replica that took its
 * slots may lack the master's last writes).
 */
export function onReconnect(client: CogmanRedis, listener: () => void): void {
  client.on('ready', listener);
  if (!isCluster(client)) return;
  client.on('-node', () => {
    if (client.status === 'ready') listener();
  });
}

/** What `openSubscriber` gives: a connection that follows channels (ioredis's, or Cluster's). */
export interface RedisSubscriber {
  /** `ready` once a connection is up: subscribe then (again), and read what was missed. */
  readonly status: string;
  on(event: 'message', listener: (channel: string, message: string) => void): this;
  on(event: 'ready' | 'close' | 'error', listener: (...args: unknown[]) => void): this;
  subscribe(channel: string): Promise<unknown>;
  quit(): Promise<unknown>;
  disconnect(): void;
}

/**
 * A connection of its own to follow channels, with Cogman's settings: a copy of the client for a
 * single node or a Sentinel group (it follows the master through a failover, and says `ready`
 * after each reconnection); for a Cluster, one node at a time (`ClusterSubscriber`).
 */
export function openSubscriber(client: CogmanRedis, connectionName: string): RedisSubscriber {
  if (isCluster(client)) return new ClusterSubscriber(client, connectionName);
  return client.duplicate({ connectionName });
}

/**
 * Follows channels on one node of a Cluster (a message published on any node reaches every
 * node), moving to another node when its node goes. ioredis's own Cluster subscriber moves too,
 * but says nothing when it does, so what was published meanwhile would go unnoticed: this one
 * says `close` when its connection drops and `ready` when a new one is up, as a single node's
 * client does.
 */
class ClusterSubscriber extends EventEmitter implements RedisSubscriber {
  private connection?: Redis;
  /** The channels followed: a connection to another node subscribes to them again. */
  private readonly channels = new Set<string>();
  private stopped = false;
  private next = 0;
  private retry?: NodeJS.Timeout;

  constructor(
    private readonly cluster: Cluster,
    private readonly connectionName: string,
  ) {
    super();
  }

  get status(): string {
    return this.stopped ? 'end' : (this.connection?.status ?? 'wait');
  }

  subscribe(channel: string): Promise<unknown> {
    this.channels.add(channel);
    return this.current().then((connection) => connection.subscribe(channel));
  }

  async quit(): Promise<unknown> {
    this.stopped = true;
    clearTimeout(this.retry);
    const connection = this.connection;
    this.connection = undefined;
    if (!connection) return;
    try {
      await connection.quit();
    } catch {
      connection.disconnect();
    }
  }

  disconnect(): void {
    this.stopped = true;
    clearTimeout(this.retry);
    this.connection?.disconnect();
    this.connection = undefined;
  }

  /** The connection in use, or a new one to a node of the cluster once the cluster knows one. */
  private async current(): Promise<Redis> {
    if (this.connection) return this.connection;
    if (this.stopped) throw new Error('The subscriber is closed');
    if (this.cluster.status === 'wait') this.cluster.connect().catch(() => {});
    while (this.cluster.nodes('all').length === 0) {
      if (this.stopped || this.cluster.status === 'end') throw new Error('The cluster is closed');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 200);
        this.cluster.once('ready', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return (this.connection ??= this.connect());
  }

  private connect(): Redis {
    const nodes = this.cluster.nodes('all');
    const node = nodes[this.next++ % nodes.length];
    const connection = node.duplicate({
      connectionName: this.connectionName,
      lazyConnect: true,
      readOnly: false,
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      // A node that does not come back soon is left for another.
      retryStrategy: (times: number) => (times > 2 ? null : 200),
    });
    connection.on('message', (channel: string, message: string) => {
      this.emit('message', channel, message);
    });
    connection.on('error', () => {});
    // On a new connection (another node), `ready` once the channels are followed again.
    connection.on('ready', () => {
      if (this.channels.size === 0) return void this.emit('ready');
      connection.subscribe(...this.channels).then(
        () => this.emit('ready'),
        () => connection.disconnect(),
      );
    });
    connection.on('close', () => this.emit('close'));
    connection.on('end', () => {
      if (this.connection !== connection) return;
      this.connection = undefined;
      if (this.stopped) return;
      // Another node: `ready` is said again once it is up (the listener subscribes then).
      this.retry = setTimeout(() => {
        this.current()
          .then((next) => next.connect())
          .catch(() => {});
      }, 200);
    });
    return connection;
  }
}

/**
 * The keys matching `pattern` (SCAN): on every master of a Cluster (SCAN names no key, so a
 * Cluster client would ask one node at random), else on the client's Redis.
 */
export async function scanKeys(client: CogmanRedis, pattern: string): Promise<string[]> {
  const found = new Set<string>();
  for (const node of isCluster(client) ? client.nodes('master') : [client]) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
      cursor = next;
      for (const key of keys) found.add(key);
    } while (cursor !== '0');
  }
  return [...found];
}

/**
 * Logs the first error of an outage and the recovery, not every reconnection attempt; for a
 * Cluster, also the nodes that leave and join its slot map (a failover). Before the first
 * connection, `waitForRedis` says what happens.
 */
function watchConnection(client: CogmanRedis): void {
  const logger = new Logger('Cogman:Redis');
  let connected = false;
  let down = false;
  client.on('error', (error: Error) => {
    if (down || !connected) return;
    down = true;
    logger.error(`Redis connection lost: ${error.message}`);
  });
  client.on('ready', () => {
    connected = true;
    if (!down) return;
    down = false;
    logger.log('Redis connection restored');
  });
  if (!isCluster(client)) return;
  const address = (redis: Redis) => `${redis.options.host}:${redis.options.port}`;
  // Not the nodes found at boot, nor those closed at shutdown.
  client.on('-node', (redis: Redis) => {
    if (client.status !== 'ready') return;
    logger.warn(`Redis Cluster: node ${address(redis)} left the slot map`);
  });
  client.on('+node', (redis: Redis) => {
    if (client.status !== 'ready') return;
    logger.log(`Redis Cluster: node ${address(redis)} joined the slot map`);
  });
}

/**
 * Connects at boot and waits for Redis, up to `connectionTimeout`, as the broker is waited for:
 * from the first failed attempt it logs where it waits and for how long. Rejects with
 * `StoreUnavailableError` when Redis never answers, when it refuses the credentials, or when the
 * client is closed meanwhile (a boot that failed elsewhere).
 */
export function waitForRedis(client: CogmanRedis, options: ResolvedCogmanOptions): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  if (client.status === 'wait') client.connect().catch(() => {});
  const logger = new Logger('Cogman:Redis');
  // The URI without its password, or where `redis` points (`redis+sentinel://…`).
  const uri = options.redis.description;
  const { connectionTimeout } = options;
  const startedAt = Date.now();
  return new Promise<void>((resolve, reject) => {
    let failures = 0;
    let last: Error | undefined;
    const fail = (what: string, cause?: Error, reason?: string) => {
      cleanUp();
      reject(new StoreUnavailableError(what, connectionTimeout, { uri, cause, reason }));
    };
    const onReady = () => {
      cleanUp();
      if (failures > 0) {
        logger.log(
          `Connected to Redis at ${uri} after ${Math.round((Date.now() - startedAt) / 100) / 10} s`,
        );
      }
      resolve();
    };
    const onError = (error: Error) => {
      failures++;
      last = error;
      if (/WRONGPASS|NOAUTH|NOPERM|invalid password|invalid username/i.test(error.message)) {
        fail('at boot', error, 'refused the credentials at boot');
      } else if (failures === 1) {
        logger.warn(
          `Waiting for Redis at ${uri}: could not connect (${error.message}); retrying for up to ${Math.round(connectionTimeout / 100) / 10} s (connectionTimeout)`,
        );
      }
    };
    const onEnd = () =>
      fail('at boot', last, 'was still being waited for when the application shut down');
    const timer = setTimeout(() => fail('at boot', last), connectionTimeout);
    timer.unref();
    const cleanUp = () => {
      clearTimeout(timer);
      client.removeListener('ready', onReady);
      client.removeListener('error', onError);
      client.removeListener('end', onEnd);
    };
    client.on('ready', onReady);
    client.on('error', onError);
    client.on('end', onEnd);
  });
}
