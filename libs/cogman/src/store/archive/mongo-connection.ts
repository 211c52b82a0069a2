import { Mongoose, type ConnectOptions, type Connection } from 'mongoose';

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
 * A connection of Cogman's Mongoose instance, created closed: MongoTaskArchive opens it at
 * bootstrap and keeps trying while the server is unreachable (Mongoose does not retry a first
 * connection), so a boot that fails earlier leaves nothing open and a boot never waits for
 * MongoDB.
 */
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
