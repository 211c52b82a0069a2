import { AmqpConnection } from '@golevelup/nestjs-rabbitmq';
import { Logger, type LoggerService } from '@nestjs/common';
import type { ChannelWrapper, CreateChannelOpts } from 'amqp-connection-manager';
import type { Channel, ConfirmChannel } from 'amqplib';
import { Socket } from 'node:net';
import { redactUri, type ResolvedCogmanOptions } from '../config';
import { BrokerUnavailableError } from '../errors';
import { batchSocketWrites } from './socket-writes';
import type { QueueDeclaration } from './task-topology';

/** What `checkQueue` says of one queue, or why it could not say. */
export type QueueCheck =
  | { queue: string; messages: number; consumers: number; error?: undefined }
  | { queue: string; error: string };

/**
 * One AMQP connection, kept up by golevelup's `AmqpConnection` (amqp-connection-manager
 * underneath: it reconnects and re-runs each channel's setup). Cogman creates its own channels on
 * it and owns it: `close` closes those channels, then the connection, once.
 */
export class BrokerConnection {
  private readonly amqp: AmqpConnection;
  private readonly channels = new Set<ChannelWrapper>();
  private readonly closed = new AbortController();
  private closing?: Promise<void>;

  /**
   * `reportsWaiting: false` keeps the first connection's attempts at debug level: a process's
   * second connection (the consumer's) to the same broker would only repeat the first's lines.
   */
  constructor(
    readonly name: string,
    private readonly options: ResolvedCogmanOptions,
    private readonly reporting: { reportsWaiting?: boolean } = {},
  ) {
    this.amqp = new AmqpConnection({
      name,
      uri: [...options.amqpUri],
      enableDirectReplyTo: false,
      registerHandlers: false,
      // Cogman waits itself (below), so that closing can cut the wait short, and logs itself.
      connectionInitOptions: {
        wait: false,
        skipConnectionFailedLogging: true,
        skipDisconnectFailedLogging: true,
      },
      connectionManagerOptions: {
        heartbeatIntervalInSeconds: 5,
        reconnectTimeInSeconds: 1,
        connectionOptions: { clientProperties: { connection_name: name }, noDelay: true },
      },
      logger: new QuietLogger(`Cogman:${name}`),
    });
  }

  /**
   * Connects, waiting up to `connectionTimeout` for the broker; credentials the broker refuses
   * fail at once. On failure the connection is closed, so nothing keeps retrying.
   */
  async connect(): Promise<void> {
    try {
      await this.amqp.init();
      this.watch();
      await this.waitUntilConnected();
    } catch (error) {
      await this.close();
      throw error;
    }
  }

  /** Calls `listener` whenever the connection is lost (it is then re-established by itself). */
  onDisconnect(listener: () => void): void {
    this.amqp.managedConnection.on('disconnect', listener);
  }

  get connected(): boolean {
    return this.amqp.managedConnection?.isConnected() ?? false;
  }

  createChannel(options: CreateChannelOpts): ChannelWrapper {
    const channel = this.amqp.managedConnection.createChannel(options);
    this.channels.add(channel);
    return channel;
  }

  /**
   * Ready messages and consumers of each queue (AMQP `checkQueue`), on a short-lived channel of
   * its own. A missing queue closes the channel it was checked on, so the next queue gets a new
   * one: one failure never spoils the others.
   */
  async checkQueues(queues: readonly string[]): Promise<QueueCheck[]> {
    const connection = this.connected ? this.amqp.managedConnection.connection : undefined;
    if (!connection) {
      throw new BrokerUnavailableError(redactUri(this.options.amqpUri), 'not connected now');
    }
    const results: QueueCheck[] = [];
    let channel: Channel | undefined;
    try {
      for (const queue of queues) {
        if (!channel) {
          channel = await connection.createChannel();
          // A failed check closes the channel with an error; the check's promise reports it.
          channel.on('error', () => {});
        }
        try {
          const { messageCount, consumerCount } = await channel.checkQueue(queue);
          results.push({ queue, messages: messageCount, consumers: consumerCount });
        } catch (error) {
          channel = undefined;
          results.push({ queue, error: error instanceof Error ? error.message : String(error) });
        }
      }
    } finally {
      await channel?.close().catch(() => {});
    }
    return results;
  }

  /**
   * A plain amqplib channel of its own on the current connection, for a short task (reading the
   * dead-letter queue); the caller closes it. Rejects with `BrokerUnavailableError` while the
   * broker is unreachable.
   */
  async openChannel(): Promise<ConfirmChannel> {
    const connection = this.connected ? this.amqp.managedConnection.connection : undefined;
    if (!connection) {
      throw new BrokerUnavailableError(redactUri(this.options.amqpUri), 'not connected now');
    }
    const channel = await connection.createConfirmChannel();
    channel.on('error', () => {});
    return channel;
  }

  /** The broker's version, as it said when this connection opened (undefined if it did not). */
  get serverVersion(): string | undefined {
    const model = this.amqp.managedConnection?.connection as
      { connection?: { serverProperties?: { version?: unknown } } } | undefined;
    const version = model?.connection?.serverProperties?.version;
    return typeof version === 'string' ? version : undefined;
  }

  /**
   * Declares the queues that do not exist yet, as `declare` says for this broker's version, and
   * leaves those that exist as they are (an operator's quorum queue, a Go fleet's lazy queue):
   * re-declaring an existing queue with other arguments fails, and some brokers refuse arguments
   * older ones take. Each check is on a channel of its own, as a missing queue closes the
   * channel it was checked on.
   */
  async ensureQueues(
    declare: (serverVersion: string | undefined) => QueueDeclaration[],
  ): Promise<void> {
    const connection = this.amqp.managedConnection.connection;
    if (!connection) {
      throw new BrokerUnavailableError(redactUri(this.options.amqpUri), 'not connected now');
    }
    let channel: Channel | undefined;
    try {
      for (const queue of declare(this.serverVersion)) {
        channel ??= await openQuietly(connection);
        try {
          await channel.checkQueue(queue.name);
          continue;
        } catch (error) {
          if (!isNotFound(error)) throw error;
          channel = await openQuietly(connection);
        }
        await channel.assertQueue(queue.name, {
          durable: true,
          exclusive: false,
          autoDelete: false,
          arguments: queue.arguments,
        });
      }
    } finally {
      await channel?.close().catch(() => {});
    }
  }

  close(): Promise<void> {
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  /**
   * Logs losing and regaining the broker, and backs the reconnection attempts off from 1 s to
   * 30 s (amqp-connection-manager retries forever, at the interval it is given).
   */
  private watch(): void {
    const manager = this.amqp.managedConnection;
    const logger = new Logger(`Cogman:${this.name}`);
    let failures = 0;
    let lostAt: number | undefined;
    let connected = manager.isConnected();
    const startedAt = Date.now();
    const uri = redactUri(this.options.amqpUri);
    manager.on('disconnect', ({ err }: { err?: Error }) => {
      if (this.closed.signal.aborted) return;
      lostAt = Date.now();
      logger.warn(`Lost the connection to RabbitMQ (${err?.message ?? 'closed'}); reconnecting`);
    });
    manager.on('connectFailed', ({ err }: { err?: Error }) => {
      if (this.closed.signal.aborted) return;
      failures++;
      manager.reconnectTimeInSeconds = Math.min(30, 2 ** Math.min(failures, 5));
      const reason = err?.message ?? 'unknown error';
      const next = `next attempt in ${manager.reconnectTimeInSeconds} s`;
      if (connected) {
        logger.warn(`Could not reconnect to RabbitMQ (attempt ${failures}: ${reason}); ${next}`);
        return;
      }
      // Before a first connection, the boot is waiting: say for what, why and how long.
      if (refusal(err, this.options.amqpUri) !== undefined) return; // connect() fails at once
      const left = Math.max(0, this.options.connectionTimeout - (Date.now() - startedAt));
      const line =
        failures === 1
          ? `Waiting for RabbitMQ at ${uri}: could not connect (${reason}); retrying for up to ${seconds(left)} (connectionTimeout), ${next}`
          : `Could not connect to RabbitMQ at ${uri} (attempt ${failures}: ${reason}); ${next}, giving up in ${seconds(left)}`;
      if (this.reporting.reportsWaiting === false) logger.debug(line);
      else logger.warn(line);
    });
    // Each connection's frames of one tick leave together (see batchSocketWrites).
    const batch = (connection: unknown) => {
      const socket = socketOf(connection);
      if (socket) batchSocketWrites(socket);
    };
    batch(manager.connection);
    manager.on('connect', ({ connection }: { connection: unknown }) => batch(connection));
    manager.on('connect', () => {
      if (!connected && failures > 0 && this.reporting.reportsWaiting !== false) {
        logger.log(`Connected to RabbitMQ at ${uri} after ${seconds(Date.now() - startedAt)}`);
      }
      connected = true;
      if (lostAt !== undefined) {
        logger.log(`Reconnected to RabbitMQ after ${((Date.now() - lostAt) / 1000).toFixed(1)} s`);
      }
      failures = 0;
      lostAt = undefined;
      manager.reconnectTimeInSeconds = 1;
    });
  }

  private waitUntilConnected(): Promise<void> {
    const manager = this.amqp.managedConnection;
    if (manager.isConnected()) return Promise.resolve();
    const { amqpUri, connectionTimeout } = this.options;
    return new Promise<void>((resolve, reject) => {
      const fail = (reason: string, cause?: unknown) => {
        cleanUp();
        reject(new BrokerUnavailableError(redactUri(amqpUri), reason, { cause }));
      };
      const onConnect = () => {
        cleanUp();
        resolve();
      };
      const onConnectFailed = ({ err }: { err: Error }) => {
        const refused = refusal(err, amqpUri);
        if (refused !== undefined) fail(refused, err);
      };
      const onClose = () => fail('the application is shutting down');
      const timer = setTimeout(
        () => fail(`no connection within ${connectionTimeout} ms (connectionTimeout)`),
        connectionTimeout,
      );
      const cleanUp = () => {
        clearTimeout(timer);
        manager.removeListener('connect', onConnect);
        manager.removeListener('connectFailed', onConnectFailed);
        this.closed.signal.removeEventListener('abort', onClose);
      };
      manager.on('connect', onConnect);
      manager.on('connectFailed', onConnectFailed);
      this.closed.signal.addEventListener('abort', onClose);
    });
  }

  private async closeOnce(): Promise<void> {
    this.closed.abort();
    await Promise.allSettled([...this.channels].map((channel) => channel.close()));
    // Not `AmqpConnection.close`, which assumes its default channel exists.
    await this.amqp.managedConnection?.close();
  }
}

/**
 * Why the broker refused the connection, when trying again cannot help (wrong credentials, a
 * virtual host that does not exist or that the user may not use); undefined for an error that may
 * pass (the broker is down or starting).
 */
function refusal(err: Error | undefined, uris: readonly string[]): string | undefined {
  const message = err?.message ?? '';
  if (/ACCESS.REFUSED|\b403\b/.test(message)) return 'the broker refused the credentials';
  // amqplib drops the reason of a refused connection.open (530 NOT_ALLOWED): it is the vhost.
  if (/Expected ConnectionOpenOk; got <ConnectionClose|NOT.ALLOWED|\b530\b/.test(message)) {
    const vhosts = [...new Set(uris.map(vhostOf))].map((vhost) => JSON.stringify(vhost));
    return `the broker refused to open virtual host ${vhosts.join(' or ')}: it does not exist, or the user may not use it (rabbitmqctl add_vhost, set_permissions)`;
  }
  return undefined;
}

/** The virtual host a URI names: its path, decoded; `/` when it names none. */
function vhostOf(uri: string): string {
  try {
    const path = new URL(uri).pathname;
    return path.length > 1 ? decodeURIComponent(path.slice(1)) : '/';
  } catch {
    return '/';
  }
}

function seconds(ms: number): string {
  return ms >= 60_000 ? `${Math.round(ms / 60_000)} min` : `${Math.round(ms / 100) / 10} s`;
}

/** A channel whose closing with an error is reported by the call that caused it. */
async function openQuietly(connection: { createChannel(): Promise<Channel> }): Promise<Channel> {
  const channel = await connection.createChannel();
  channel.on('error', () => {});
  return channel;
}

/** A `checkQueue` refused because the queue does not exist (404 NOT_FOUND). */
function isNotFound(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === 404 || /NOT_FOUND/.test(String(error));
}

/** The socket under an amqplib connection (amqplib keeps it as `connection.stream`). */
function socketOf(connection: unknown): Socket | undefined {
  const stream = (connection as { connection?: { stream?: unknown } } | undefined)?.connection
    ?.stream;
  return stream instanceof Socket ? stream : undefined;
}

/** golevelup logs every channel it opens or closes; Cogman keeps that at debug level. */
class QuietLogger implements LoggerService {
  private readonly logger: Logger;

  constructor(context: string) {
    this.logger = new Logger(context);
  }

  log(message: unknown): void {
    this.logger.debug(message);
  }

  error(message: unknown, stack?: string): void {
    this.logger.error(message, stack);
  }

  warn(message: unknown): void {
    this.logger.warn(message);
  }

  debug(message: unknown): void {
    this.logger.debug(message);
  }

  verbose(message: unknown): void {
    this.logger.verbose(message);
  }
}
