import type { Connection } from 'mongoose';
import { resolveCogmanOptions, type CogmanModuleOptions } from '../../libs/cogman/src/config';
import {
  closeMongoConnection,
  createMongoConnection,
} from '../../libs/cogman/src/store/archive/mongo-connection';
import {
  MongoTaskArchive,
  type ArchiveWriteMode,
} from '../../libs/cogman/src/store/archive/mongo-task-archive';
import { CapturedLogs } from './logs';
import { AMQP_URI, REDIS_URI } from './services';

/** A MongoTaskArchive on a connection of its own, as CogmanModule wires it. */
export interface OpenArchive {
  archive: MongoTaskArchive;
  connection: Connection;
  logs: CapturedLogs;
  close(): Promise<void>;
}

/** Starts an archive on `mongoUri` (not waiting for the server, as at boot). */
export function startArchive(
  mongoUri: string,
  options: Partial<CogmanModuleOptions> = {},
  writes: ArchiveWriteMode = 'auto',
): OpenArchive {
  const resolved = resolveCogmanOptions({
    amqpUri: AMQP_URI,
    redisUri: REDIS_URI,
    mongoUri,
    ...options,
  });
  const logs = new CapturedLogs();
  const connection = createMongoConnection();
  const archive = new MongoTaskArchive(connection, resolved, { writes, logger: logs });
  archive.start();
  let closing: Promise<void> | undefined;
  return {
    archive,
    connection,
    logs,
    close: () =>
      (closing ??= (async () => {
        await archive.close();
        await closeMongoConnection(connection);
      })()),
  };
}
