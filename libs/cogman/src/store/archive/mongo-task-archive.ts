import { Logger } from '@nestjs/common';
import type { Connection } from 'mongoose';
import type { ResolvedCogmanOptions } from '../../config';
import type { TaskEnvelope, TaskRecord } from '../../task';
import type {
  ScheduledTask,
  TaskArchive,
  TaskCountBucket,
  TaskCountQuery,
  TaskListPage,
  TaskListQuery,
} from '../task-archive';
import type { TaskStatusChange } from '../task-log.store';
import { ArchiveBulkWriter } from './archive-bulk.writer';
import { ArchiveIndexKeeper } from './archive-indexes.keeper';
import { ArchiveLeases } from './archive-leases';
import { ArchiveQueries } from './archive-queries';
import { ArchiveContext, BATCH_DELAY, type MongoTaskArchiveSettings } from './archive.context';
import { ArchiveConnector } from './archive.connector';
import { closeMongoConnection } from './mongo-connection';
import { TaskArchiveWriter } from './task-archive.writer';

export type { ArchiveWriteMode, MongoTaskArchiveSettings } from './archive.context';

/** Most changes in one batch: when the archive falls behind, batches grow and merge more. */
const BATCH_SIZE = 5000;

/**
 * The archive in MongoDB: one document per attempt in `tasks` (see task.schema.ts), written in
 * ordered bulk writes from a bounded buffer, so that MongoDB never slows tasks down and an outage
 * only delays the archive. Needs nothing FerretDB 1.24 lacks: no transactions, no aggregation
 * beyond `$match`/`$group`/`$sum`; `collMod` and TTL indexes are used where the server has them
 * (without TTL indexes, a periodic delete replaces them).
 *
 * Each role has its part, around one shared `ArchiveContext`: the connector (connection state),
 * the index keeper (indexes and expiry), the buffer and the bulk writer (writes), the leases
 * (re-enqueue) and the queries. It owns its connection and closes it.
 */
export class MongoTaskArchive implements TaskArchive {
  private readonly context: ArchiveContext;
  private readonly buffer: TaskArchiveWriter;
  private readonly indexes: ArchiveIndexKeeper;
  private readonly connector: ArchiveConnector;
  private readonly leases: ArchiveLeases;
  private readonly queries: ArchiveQueries;

  constructor(
    connection: Connection,
    options: ResolvedCogmanOptions,
    settings: MongoTaskArchiveSettings = {},
  ) {
    const logger = settings.logger ?? new Logger('Cogman:Mongo');
    this.context = new ArchiveContext(connection, options, logger, settings.writes);
    const bulk = new ArchiveBulkWriter(this.context);
    this.buffer = new TaskArchiveWriter((changes) => bulk.writeBatch(changes), {
      bufferSize: options.archiveBufferSize,
      batchSize: BATCH_SIZE,
      batchDelay: BATCH_DELAY,
      retryDelay: { min: 100, max: 5_000 },
      logger,
    });
    this.context.onTraits(({ batchDelay }) => this.buffer.tune({ batchDelay }));
    this.indexes = new ArchiveIndexKeeper(this.context);
    this.connector = new ArchiveConnector(this.context, this.indexes, () => this.buffer.wake());
    this.leases = new ArchiveLeases(this.context, bulk);
    this.queries = new ArchiveQueries(this.context);
  }

  /** Starts connecting in the background; boot never waits for MongoDB. */
  start(): void {
    this.connector.start();
  }

  get connected(): boolean {
    return this.context.connected;
  }

  get backlog(): number {
    return this.buffer.backlog;
  }

  write(change: TaskStatusChange): Promise<void> {
    return this.buffer.write(change);
  }

  async flush(timeout: number): Promise<void> {
    await this.buffer.flush(timeout);
  }

  /**
   * Stops writing and sweeping; changes still waiting are given up, with a warning. Then closes
   * the connection.
   */
  async close(): Promise<void> {
    if (this.context.closed) return;
    this.context.closed = true;
    this.indexes.stop();
    this.connector.stop();
    const left = this.buffer.close();
    if (left > 0) {
      this.context.logger.warn(
        `${left} status change(s) were not archived: MongoDB did not take them before shutdown`,
      );
    }
    await closeMongoConnection(this.context.connection);
  }

  get(taskId: string): Promise<TaskRecord | null> {
    return this.queries.get(taskId);
  }

  list(query: TaskListQuery): Promise<TaskListPage> {
    return this.queries.list(query);
  }

  count(query: TaskCountQuery): Promise<TaskCountBucket[]> {
    return this.queries.count(query);
  }

  scheduledTasks(after: string | null, limit: number): Promise<ScheduledTask[]> {
    return this.queries.scheduledTasks(after, limit);
  }

  claimOrphans(owner: string, leaseMs: number, limit: number): Promise<TaskEnvelope[]> {
    return this.leases.claimOrphans(owner, leaseMs, limit);
  }

  renewLease(owner: string, taskIds: string[], leaseMs: number): Promise<string[]> {
    return this.leases.renewLease(owner, taskIds, leaseMs);
  }
}
