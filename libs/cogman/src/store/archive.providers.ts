import type { Provider } from '@nestjs/common';
import type { Connection } from 'mongoose';
import { RESOLVED_OPTIONS, type ResolvedCogmanOptions } from '../config';
import { loadOptional } from '../util/optional-dependency';
import {
  ARCHIVE_PACKAGES,
  COGMAN_MONGO_CONNECTION,
  TASK_ARCHIVE,
  type TaskArchive,
} from './task-archive';

/** The archive's code, loaded only when `mongoUri` is set (so only then is Mongoose loaded). */
function archiveModule(): typeof import('./archive') {
  return loadOptional(
    'The MongoDB archive (mongoUri)',
    ARCHIVE_PACKAGES,
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded only when configured
    () => require('./archive') as typeof import('./archive'),
  );
}

/**
 * Cogman's Mongoose connection and the archive on it, both null without `mongoUri` (decided here,
 * not when the module is defined, because `mongoUri` may come from an async factory). The archive
 * owns the connection: it opens it at bootstrap and closes it at shutdown.
 * (@nestjs/mongoose's MongooseModule cannot make a connection optional: it always connects.)
 */
export const archiveProviders: Provider[] = [
  {
    provide: COGMAN_MONGO_CONNECTION,
    inject: [RESOLVED_OPTIONS],
    useFactory: (options: ResolvedCogmanOptions): Connection | null =>
      options.mongoUri ? archiveModule().createMongoConnection() : null,
  },
  {
    provide: TASK_ARCHIVE,
    inject: [COGMAN_MONGO_CONNECTION, RESOLVED_OPTIONS],
    useFactory: (
      connection: Connection | null,
      options: ResolvedCogmanOptions,
    ): TaskArchive | null =>
      connection ? new (archiveModule().MongoTaskArchive)(connection, options) : null,
  },
];
