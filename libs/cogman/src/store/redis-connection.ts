import { Logger, type Provider } from '@nestjs/common';
import { Redis } from 'ioredis';
import { RESOLVED_OPTIONS, type ResolvedCogmanOptions } from '../config';

/** Cogman's own ioredis client; CogmanLifecycle closes it after Cogman's last write. */
export const COGMAN_REDIS = Symbol('cogman:redis');

export const redisConnectionProvider: Provider = {
  provide: COGMAN_REDIS,
  inject: [RESOLVED_OPTIONS],
  useFactory: (options: ResolvedCogmanOptions) => {
    const client = new Redis(options.redisUri, {
      connectionName: 'cogman',
      // No auto-pipelining: the task log already sends a tick's changes as one call, and an
      // auto-pipeline builds a Pipeline object (a copy of every command) per tick.
      enableAutoPipelining: false,
      // Connect on first use, so that a boot that fails earlier leaves nothing open.
      lazyConnect: true,
      // Through an outage, commands wait for the connection and run in order when it returns
      // (TaskLog decides who waits for them); reconnection goes on, backing off to 2 s.
      maxRetriesPerRequest: null,
      // A connection that stops answering (a network cut) is dropped and reconnected.
      socketTimeout: 5000,
      // Closing a connection that never came up should not keep the process alive for long.
      disconnectTimeout: 200,
    });
    watchConnection(client);
    return client;
  },
};

/** Logs the first error of an outage and the recovery, not every reconnection attempt. */
function watchConnection(client: Redis): void {
  const logger = new Logger('Cogman:Redis');
  let down = false;
  client.on('error', (error: Error) => {
    if (down) return;
    down = true;
    logger.error(`Redis connection lost: ${error.message}`);
  });
  client.on('ready', () => {
    if (!down) return;
    down = false;
    logger.log('Redis connection restored');
  });
}
