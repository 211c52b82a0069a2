import type { LoggerService } from '@nestjs/common';
import { ConnectionStates, type Connection, type Model } from 'mongoose';
import { redactUri, type ResolvedCogmanOptions } from '../../config';
import { ArchiveUnavailableError, TaskQueryInvalidError } from '../../errors';
import type { StoredTaskDocument } from './task-archive.query';
import {
  TASK_LEASES_COLLECTION,
  TASKS_COLLECTION,
  TaskLeaseSchema,
  TaskSchema,
  type TaskDocument,
  type TaskLeaseDocument,
} from './task.schema';

/**
 * How status changes are written:
 * - `guarded`: the rank guard is in the filter of each update, which a server applies
 *   atomically (MongoDB, and servers with real secondary indexes);
 * - `checked`: the rank guard is checked against the state read just before, and every filter is
 *   the bare `_id` (FerretDB 1.x: its SQLite backend scans the whole collection for any other
 *   filter, and its updates are not atomic anyway);
 * - `auto` (the default): `checked` on FerretDB 1.x, `guarded` elsewhere.
 */
export type ArchiveWriteMode = 'auto' | 'guarded' | 'checked';

/** What CogmanModule leaves at its defaults, and specs set. */
export interface MongoTaskArchiveSettings {
  writes?: ArchiveWriteMode;
  logger?: LoggerService;
}

/** Most operations sent in one bulk write. */
export const CHUNK_SIZE = 1000;
/**
 * Most updates in one bulk write to FerretDB 1.x. It keeps every statement of an update command
 * open until the command ends, and its SQLite backend has 100 connections per database: a
 * command of 100 updates never returns, and a few commands of 50 from several processes at once
 * can exhaust the pool too. Small commands keep well clear of it.
 */
const FERRETDB_UPDATES_PER_CHUNK = 10;
/** How long the first change of a batch waits for others (ms). */
export const BATCH_DELAY = 50;
/**
 * The same on FerretDB 1.x, whose SQLite backend scans the collection for every update (it only
 * skips the scan for an insert): a task that finishes within it is written once, by an insert.
 */
const FERRETDB_BATCH_DELAY = 1_000;

/** How this server is written to (see `detectServer`). */
export interface ServerTraits {
  mode: 'guarded' | 'checked';
  updatesPerChunk: number;
  batchDelay: number;
}

/**
 * What every part of the archive shares: the connection and its models, the options, the logger,
 * whether the archive is open, and the server's traits (known after the first connection).
 */
export class ArchiveContext {
  readonly tasks: Model<TaskDocument>;
  readonly leases: Model<TaskLeaseDocument>;
  readonly uri: string;
  /** Opened once (the first connection succeeded); closed for good at shutdown. */
  opened = false;
  closed = false;
  private server?: ServerTraits;
  private readonly traitListeners: ((traits: ServerTraits) => void)[] = [];

  constructor(
    readonly connection: Connection,
    readonly options: ResolvedCogmanOptions,
    readonly logger: LoggerService,
    private readonly writes: ArchiveWriteMode = 'auto',
  ) {
    if (!options.mongoUri) throw new Error('MongoTaskArchive needs mongoUri');
    this.uri = options.mongoUri;
    this.tasks = connection.model<TaskDocument>('CogmanTask', TaskSchema, TASKS_COLLECTION);
    this.leases = connection.model<TaskLeaseDocument>(
      'CogmanTaskLease',
      TaskLeaseSchema,
      TASK_LEASES_COLLECTION,
    );
  }

  get connected(): boolean {
    return this.opened && !this.closed && this.connection.readyState === ConnectionStates.connected;
  }

  assertAvailable(): void {
    if (this.closed) throw new ArchiveUnavailableError('Cogman has shut down');
    if (!this.connected) {
      throw new ArchiveUnavailableError(`not connected to ${redactUri(this.uri)}`);
    }
  }

  /** Calls `listener` once the server's traits are known (at once if they are). */
  onTraits(listener: (traits: ServerTraits) => void): void {
    this.traitListeners.push(listener);
    if (this.server) listener(this.server);
  }

  /** The server's traits, asked of it once. */
  async traits(): Promise<ServerTraits> {
    if (!this.server) {
      this.server = await this.detectServer();
      for (const listener of this.traitListeners) listener(this.server);
    }
    return this.server;
  }

  /**
   * Documents by id, in one query: on MongoDB through the `_id` index; on FerretDB 1.x one scan
   * of the collection, where a lookup per id would scan it once per id.
   */
  async readMany(
    ids: string[],
    projection: Record<string, 1>,
  ): Promise<Map<string, StoredTaskDocument>> {
    const docs = await this.tasks
      .find({ _id: { $in: [...new Set(ids)] } }, projection)
      .lean<StoredTaskDocument[]>();
    return new Map(docs.map((doc) => [doc._id, doc]));
  }

  /** FerretDB 1.x (which says so in `buildInfo`) needs `checked` writes and small commands. */
  private async detectServer(): Promise<ServerTraits> {
    const info = await this.connection.db!.admin().command({ buildInfo: 1 });
    const version: unknown = info.ferretdbVersion;
    const ferretdb1 = typeof version === 'string' && /^v?1\./.test(version);
    return {
      mode: this.writes !== 'auto' ? this.writes : ferretdb1 ? 'checked' : 'guarded',
      updatesPerChunk: ferretdb1 ? FERRETDB_UPDATES_PER_CHUNK : CHUNK_SIZE,
      batchDelay: ferretdb1 ? FERRETDB_BATCH_DELAY : BATCH_DELAY,
    };
  }
}

export function codeOf(error: unknown): unknown {
  return (error as { code?: unknown } | null)?.code;
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export const DUPLICATE_KEY = 11000;

/** Refuses a count or a duration that is not a whole number from 1 to `max`. */
export function checkPositiveInteger(
  field: string,
  value: unknown,
  max = Number.MAX_SAFE_INTEGER,
): void {
  if (!Number.isSafeInteger(value) || (value as number) < 1 || (value as number) > max) {
    throw new TaskQueryInvalidError(field, `must be a whole number from 1 to ${max}`);
  }
}
