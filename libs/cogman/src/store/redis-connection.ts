import { Logger, type Provider } from '@nestjs/common';
import { Redis } from 'ioredis';
import { redactUri, RESOLVED_OPTIONS, type ResolvedCogmanOptions } from '../config';
import { StoreUnavailableError } from '../errors';

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

/**
 * Logs the first error of an outage and the recovery, not every reconnection attempt. Before the
 * first connection, `waitForRedis` says what happens.
 */
function watchConnection(client: Redis): void {
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
}

/**
 * Connects at boot and waits for Redis, up to `connectionTimeout`, as the broker is waited for:
 * from the first failed attempt it logs where it waits and for how long. Rejects with
 * `StoreUnavailableError` when Redis never answers, when it refuses the credentials, or when the
 * client is closed meanwhile (a boot that failed elsewhere).
 */
export function waitForRedis(client: Redis, options: ResolvedCogmanOptions): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  if (client.status === 'wait') client.connect().catch(() => {});
  const logger = new Logger('Cogman:Redis');
  const uri = redactUri(options.redisUri);
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
