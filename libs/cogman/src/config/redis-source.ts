import type { Cluster, ClusterNode, Redis, RedisOptions, SentinelAddress } from 'ioredis';
import { OptionsInvalidError } from '../errors';
import { redactUri } from './redact-uri';

/** What the `redis` option takes: ioredis options, an ioredis `Redis` client or a `Cluster`. */
export type CogmanRedisOption = RedisOptions | Redis | Cluster;

/** How the task log's Redis is laid out: one node (with or without replicas), Sentinel, Cluster. */
export type RedisTopology = 'standalone' | 'sentinel' | 'cluster';

/**
 * Where Cogman's own Redis client comes from, once validated: a URI (`redisUri`), ioredis options,
 * or a client of the application's (a `Redis` or a `Cluster`) that Cogman copies.
 */
export type RedisSource =
  | { kind: 'uri'; topology: 'standalone'; uri: string; description: string }
  | {
      kind: 'options';
      topology: 'standalone' | 'sentinel';
      options: RedisOptions;
      description: string;
    }
  | { kind: 'client'; topology: 'standalone' | 'sentinel'; client: Redis; description: string }
  | { kind: 'cluster'; topology: 'cluster'; client: Cluster; description: string };

const SHAPE = 'expected ioredis options, an ioredis Redis client or an ioredis Cluster';

/**
 * Why Cogman refuses `keyPrefix`: its keys are its own (and documented), each under the hash tag
 * of its namespace; a prefix would move them where the other processes of the namespace, the
 * tools and the docs do not look, and one with a hash tag of its own would take over Cogman's.
 */
export const KEY_PREFIX_REFUSED =
  'is not supported: Cogman names its keys itself, all under the hash tag of the namespace ' +
  '(cogman:{<namespace>}:…) so that each of its scripts stays in one Redis Cluster slot and ' +
  'every process of the namespace finds them; use the namespace option to keep services apart';

/**
 * Validates `redis` (ioredis options, a `Redis`, a `Cluster`), given instead of `redisUri`. Clients
 * are recognised by their shape rather than by `instanceof`, so that one built with another copy
 * of ioredis is accepted too.
 */
export function redisSource(value: unknown): RedisSource {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new OptionsInvalidError('redis', describeValue(value), SHAPE);
  }
  const candidate = value as { duplicate?: unknown; isCluster?: unknown; options?: unknown };
  if (typeof candidate.duplicate === 'function') {
    if (typeof candidate.options !== 'object' || candidate.options === null) {
      throw new OptionsInvalidError('redis', 'an object with duplicate()', SHAPE);
    }
    if (candidate.isCluster === true) {
      const cluster = value as Cluster;
      refusePrefix(cluster.options.keyPrefix ?? cluster.options.redisOptions?.keyPrefix);
      return {
        kind: 'cluster',
        topology: 'cluster',
        client: cluster,
        description: describeCluster(startupNodesOf(cluster)),
      };
    }
    const client = value as Redis;
    refusePrefix(client.options.keyPrefix);
    return { kind: 'client', client, ...describeOptions(client.options) };
  }
  const options = value as RedisOptions;
  refusePrefix(options.keyPrefix);
  if (options.sentinels !== undefined) {
    if (!Array.isArray(options.sentinels) || options.sentinels.length === 0) {
      throw new OptionsInvalidError(
        'redis.sentinels',
        describeValue(options.sentinels),
        'expected a non-empty array of { host, port }',
      );
    }
    if (typeof options.name !== 'string' || options.name === '') {
      throw new OptionsInvalidError(
        'redis.name',
        describeValue(options.name),
        'is required with sentinels: the name of the master group the sentinels watch',
      );
    }
  }
  return { kind: 'options', options, ...describeOptions(options) };
}

function refusePrefix(prefix: unknown): void {
  if (prefix === undefined || prefix === null || prefix === '') return;
  throw new OptionsInvalidError('redis.keyPrefix', describeValue(prefix), KEY_PREFIX_REFUSED);
}

/** A single node's or a Sentinel group's address, without a password. */
function describeOptions(options: RedisOptions): {
  topology: 'standalone' | 'sentinel';
  description: string;
} {
  const db = options.db ? `/${options.db}` : '';
  if (options.sentinels?.length) {
    const sentinels = options.sentinels.map((s: Partial<SentinelAddress>) => address(s)).join(',');
    return {
      topology: 'sentinel',
      description: `redis+sentinel://${sentinels}/${options.name ?? ''}${db}`,
    };
  }
  if (options.path) return { topology: 'standalone', description: `redis+unix://${options.path}` };
  const scheme = options.tls ? 'rediss' : 'redis';
  return {
    topology: 'standalone',
    description: `${scheme}://${address({ host: options.host, port: options.port })}${db}`,
  };
}

/** The nodes a Cluster was created with (ioredis keeps them private, and uses them in `duplicate`). */
export function startupNodesOf(cluster: Cluster): ClusterNode[] {
  return (cluster as unknown as { startupNodes: ClusterNode[] }).startupNodes ?? [];
}

function describeCluster(nodes: ClusterNode[]): string {
  const addresses = nodes.map((node) => {
    // ioredis's defaults: a node given by its port is on 127.0.0.1.
    if (typeof node === 'number') return `127.0.0.1:${node}`;
    if (typeof node === 'string') {
      // `redis://user:password@host:port` or `host:port`.
      return /^\w+:\/\//.test(node) ? redactUri(node).replace(/^\w+:\/\//, '') : node;
    }
    return `${node.host ?? '127.0.0.1'}:${node.port ?? 6379}`;
  });
  return `redis+cluster://${addresses.join(',')}`;
}

function address({ host, port }: { host?: string; port?: number }): string {
  return `${host ?? 'localhost'}:${port ?? 6379}`;
}

function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(redactUri(value));
  if (value === undefined || value === null) return String(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return `a value of type ${Array.isArray(value) ? 'array' : typeof value}`;
}
