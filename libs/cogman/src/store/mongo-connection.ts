import type { Provider } from '@nestjs/common';
import { getConnectionToken } from '@nestjs/mongoose';
import { Mongoose, type ConnectOptions, type Connection } from 'mongoose';
import { RESOLVED_OPTIONS } from '../cogman.constants';
import type { ResolvedCogmanOptions } from '../config';

/**
 * Cogman's own Mongoose connection (null without `mongoUri`), under the token of @nestjs/mongoose
 * for a connection named `cogman`, so an application can `@InjectConnection('cogman')`.
 * CogmanLifecycle closes it after Cogman's last write.
 */
export const COGMAN_MONGO_CONNECTION = getConnectionToken('cogman');

/** Database used when `mongoUri` names none. */
export const DEFAULT_MONGO_DATABASE = 'cogman';

/** How long an operation waits for a reachable server, unless `mongoUri` sets it. */
const SERVER_SELECTION_TIMEOUT = 5_000;

/**
 * A Mongoose instance of Cogman's own, so that an application's global Mongoose settings and
 * plugins never reach Cogman's schemas (and Cogman's never reach the application's).
 */
const mongoose = new Mongoose();

/**
 * Decided here, not at module definition, because `mongoUri` may come from an async factory.
 * The connection is created closed: MongoTaskArchive opens it at bootstrap and keeps trying
 * while the server is unreachable (Mongoose does not retry a first connection), so a boot that
 * fails earlier leaves nothing open and a boot never waits for MongoDB.
 * (@nestjs/mongoose's MongooseModule cannot make a connection optional: it always connects.)
 */
export const mongoConnectionProvider: Provider = {
  provide: COGMAN_MONGO_CONNECTION,
  inject: [RESOLVED_OPTIONS],
  useFactory: (options: ResolvedCogmanOptions): Connection | null =>
    options.mongoUri ? createMongoConnection() : null,
};

/** A connection of Cogman's Mongoose instance, not yet opened (see MongoTaskArchive.start). */
export function createMongoConnection(): Connection {
  const connection = mongoose.createConnection();
  // Without a listener, a failed first connection would be an unhandled 'error' event.
  connection.on('error', () => {});
  return connection;
}

/** Options of `openUri`: Cogman's defaults where the URI says nothing. */
export function mongoConnectOptions(uri: string): ConnectOptions {
  const options: ConnectOptions = {
    // Cogman creates its indexes and collections itself, and buffers writes itself.
    autoIndex: false,
    autoCreate: false,
    bufferCommands: false,
  };
  if (!databaseOf(uri)) options.dbName = DEFAULT_MONGO_DATABASE;
  if (!/[?&]serverSelectionTimeoutMS=/i.test(uri)) {
    options.serverSelectionTimeoutMS = SERVER_SELECTION_TIMEOUT;
  }
  return options;
}

/** The database a MongoDB URI names (`mongodb://host/<db>?...`), if any. */
export function databaseOf(uri: string): string | undefined {
  const match = /^mongodb(?:\+srv)?:\/\/[^/?]*(?:\/([^?]*))?/i.exec(uri);
  const name = match?.[1];
  return name ? decodeURIComponent(name) : undefined;
}

/** Closes the connection, once, whatever state it is in. */
export async function closeMongoConnection(connection: Connection): Promise<void> {
  // Removes it from Cogman's Mongoose instance too, so closed connections do not pile up.
  await connection.destroy();
}
