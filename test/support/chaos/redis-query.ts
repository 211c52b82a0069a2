import { Redis } from 'ioredis';

/** A Redis or sentinel on loopback, as ioredis takes it (`{ host, port }`). */
export interface RedisEndpoint {
  host: '127.0.0.1';
  port: number;
}

export type RedisRole = 'master' | 'replica';

/**
 * Runs `query` on a connection of its own to the Redis (or sentinel) on 127.0.0.1:`port`, then
 * closes it. The connection is never retried and never queues: a server that is down, or one
 * that takes over 2 s to answer, rejects at once. For the fixtures' polls, not for the code
 * under test.
 */
export async function queryRedis<T>(
  port: number,
  query: (client: Redis) => Promise<T>,
): Promise<T> {
  const client = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    connectTimeout: 2000,
    commandTimeout: 2000,
    enableOfflineQueue: false,
    enableReadyCheck: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    return await query(client);
  } finally {
    client.disconnect();
  }
}

/** `INFO` (or `CLUSTER INFO`) text as a map of its `field:value` lines. */
export function parseInfo(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0 && !line.startsWith('#')) fields[line.slice(0, colon)] = line.slice(colon + 1);
  }
  return fields;
}

/** One server's `INFO replication`: its role and, for a replica, where it replicates from. */
export interface ReplicationInfo {
  role: RedisRole;
  /** A replica's master port (as configured; the link may be down). */
  masterPort?: number;
  /** A replica's link to its master is up (`master_link_status:up`). */
  linkUp: boolean;
}

export async function replicationInfo(port: number): Promise<ReplicationInfo> {
  const info = parseInfo(await queryRedis(port, (client) => client.info('replication')));
  if (info.role === 'master') return { role: 'master', linkUp: false };
  return {
    role: 'replica',
    masterPort: Number(info.master_port),
    linkUp: info.master_link_status === 'up',
  };
}
