import { Logger, type LoggerService } from '@nestjs/common';
import {
  ConnectionStates,
  mongo,
  type AnyBulkWriteOperation,
  type Connection,
  type Model,
} from 'mongoose';
import { redactUri, type ResolvedCogmanOptions } from '../config';
import {
  ArchiveRecordRefusedError,
  ArchiveUnavailableError,
  TaskQueryInvalidError,
} from '../errors';
import { isTaskStatus, type TaskEnvelope, type TaskRecord } from '../task';
import { mongoConnectOptions } from './mongo-connection';
import {
  TASK_LIST_MAX_LIMIT,
  type ScheduledTask,
  type TaskArchive,
  type TaskCountBucket,
  type TaskCountQuery,
  type TaskListPage,
  type TaskListQuery,
} from './task-archive';
import { hasTtlIndex, planIndexes, type ExistingIndex } from './task-archive.indexes';
import {
  bucketBounds,
  bucketFilter,
  emptyCounts,
  encodeCursor,
  pageFilter,
  planList,
  toTaskEnvelope,
  toTaskRecord,
  type StoredTaskDocument,
} from './task-archive.query';
import { TaskArchiveWriter } from './task-archive.writer';
import {
  checkedOperation,
  guardedOperations,
  planTaskChanges,
  type StoredTaskState,
} from './task-archive.writes';
import type { TaskStatusChange } from './task-log.store';
import {
  TASK_INDEXES,
  TASK_LEASES_COLLECTION,
  TASKS_COLLECTION,
  TaskLeaseSchema,
  TaskSchema,
  ttlIndex,
  type ArchiveIndex,
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

/** Most changes in one batch: when the archive falls behind, batches grow and merge more. */
const BATCH_SIZE = 5000;
/** Most operations sent in one bulk write. */
const CHUNK_SIZE = 1000;
/**
 * Most updates in one bulk write to FerretDB 1.x. It keeps every statement of an update command
 * open until the command ends, and its SQLite backend has 100 connections per database: a
 * command of 100 updates never returns, and a few commands of 50 from several processes at once
 * can exhaust the pool too. Small commands keep well clear of it.
 */
const FERRETDB_UPDATES_PER_CHUNK = 10;
/** How long the first change of a batch waits for others (ms). */
const BATCH_DELAY = 50;
/**
 * The same on FerretDB 1.x, whose SQLite backend scans the collection for every update (it only
 * skips the scan for an insert): a task that finishes within it is written once, by an insert.
 */
const FERRETDB_BATCH_DELAY = 1_000;
/** Count buckets are aggregated this many at a time. */
const COUNT_CONCURRENCY = 4;
/** A lease closer than this to its end is not extended in place but claimed again (ms). */
const LEASE_MARGIN = 1_000;
/** The sweep that stands in for a TTL index runs this often, within these bounds (ms). */
const SWEEP_INTERVAL = { min: 1_000, max: 60 * 60 * 1_000 };

const NAMESPACE_NOT_FOUND = 26;
const DUPLICATE_KEY = 11000;

/** How this server is written to (see `detectServer`). */
interface ServerTraits {
  mode: 'guarded' | 'checked';
  updatesPerChunk: number;
  batchDelay: number;
}

/**
 * The archive in MongoDB: one document per attempt in `tasks` (see task.schema.ts), written in
 * ordered bulk writes from a bounded buffer, so that MongoDB never slows tasks down and an outage
 * only delays the archive. Needs nothing FerretDB 1.24 lacks: no transactions, no aggregation
 * beyond `$match`/`$group`/`$sum`; `collMod` and TTL indexes are used where the server has them
 * (without TTL indexes, a periodic delete replaces them).
 */
export class MongoTaskArchive implements TaskArchive {
  private readonly logger: LoggerService;
  private readonly tasks: Model<TaskDocument>;
  private readonly leases: Model<TaskLeaseDocument>;
  private readonly writer: TaskArchiveWriter;
  private readonly uri: string;
  private server?: ServerTraits;
  private started = false;
  private closed = false;
  private opened = false;
  private preparing?: Promise<void>;
  private ttlUnsupported = false;
  private sweeper?: NodeJS.Timeout;
  private resumeOpening?: () => void;

  constructor(
    private readonly connection: Connection,
    private readonly options: ResolvedCogmanOptions,
    private readonly settings: MongoTaskArchiveSettings = {},
  ) {
    if (!options.mongoUri) throw new Error('MongoTaskArchive needs mongoUri');
    this.uri = options.mongoUri;
    this.logger = settings.logger ?? new Logger('Cogman:Mongo');
    this.tasks = connection.model<TaskDocument>('CogmanTask', TaskSchema, TASKS_COLLECTION);
    this.leases = connection.model<TaskLeaseDocument>(
      'CogmanTaskLease',
      TaskLeaseSchema,
      TASK_LEASES_COLLECTION,
    );
    this.writer = new TaskArchiveWriter((changes) => this.writeBatch(changes), {
      bufferSize: options.archiveBufferSize,
      batchSize: BATCH_SIZE,
      batchDelay: BATCH_DELAY,
      retryDelay: { min: 100, max: 5_000 },
      logger: this.logger,
    });
    connection.on('disconnected', () => {
      if (this.opened && !this.closed) this.logger.warn('MongoDB archive connection lost');
    });
    connection.on('reconnected', () => {
      if (this.closed) return;
      this.logger.log('MongoDB archive connection restored');
      this.writer.wake();
      void this.prepare();
    });
  }

  /** Starts connecting in the background; boot never waits for MongoDB. */
  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    void this.open();
  }

  get connected(): boolean {
    return this.opened && !this.closed && this.connection.readyState === ConnectionStates.connected;
  }

  get backlog(): number {
    return this.writer.backlog;
  }

  write(change: TaskStatusChange): Promise<void> {
    return this.writer.write(change);
  }

  async flush(timeout: number): Promise<void> {
    await this.writer.flush(timeout);
  }

  /** Stops writing and sweeping; changes still waiting are given up, with a warning. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    clearInterval(this.sweeper);
    this.resumeOpening?.();
    const left = this.writer.close();
    if (left > 0) {
      this.logger.warn(
        `${left} status change(s) were not archived: MongoDB did not take them before shutdown`,
      );
    }
    return Promise.resolve();
  }

  async get(taskId: string): Promise<TaskRecord | null> {
    if (typeof taskId !== 'string' || taskId === '') {
      throw new TaskQueryInvalidError('taskId', 'must be a non-empty string');
    }
    this.assertAvailable();
    // A bare string (checked above): FerretDB looks `{ _id: <string> }` up without a scan, and
    // only that form.
    const doc = await this.tasks.findOne({ _id: taskId }).lean<StoredTaskDocument>();
    return doc ? toTaskRecord(doc) : null;
  }

  async list(query: TaskListQuery): Promise<TaskListPage> {
    const plan = planList(query);
    this.assertAvailable();
    const sort = { created_at: plan.direction, task_id: plan.direction };
    const [total, docs] = await Promise.all([
      this.tasks.countDocuments(plan.filter),
      this.tasks
        .find(pageFilter(plan))
        .sort(sort)
        .limit(plan.limit + 1)
        .lean<StoredTaskDocument[]>(),
    ]);
    const page = docs.slice(0, plan.limit);
    const last = page.at(-1);
    return {
      items: page.map(toTaskRecord).filter((record) => record !== null),
      total,
      nextCursor:
        docs.length > plan.limit && last?.created_at
          ? encodeCursor({ createdAt: last.created_at.getTime(), taskId: last.task_id ?? last._id })
          : null,
    };
  }

  async count(query: TaskCountQuery): Promise<TaskCountBucket[]> {
    const bounds = bucketBounds(query);
    const filters = bounds.map((bucket) => bucketFilter(bucket, query.name));
    this.assertAvailable();
    // One $match + $group per bucket: FerretDB 1.24 has neither $bucket nor the arithmetic
    // operators that would compute a bucket number in one pipeline.
    return mapLimit(bounds, COUNT_CONCURRENCY, async (bucket, i) => {
      const groups = await this.tasks.aggregate<{ _id: unknown; n: number }>([
        { $match: filters[i] },
        { $group: { _id: '$status', n: { $sum: 1 } } },
      ]);
      const counts = emptyCounts();
      let total = 0;
      for (const group of groups) {
        total += group.n;
        if (isTaskStatus(group._id)) counts[group._id] += group.n;
      }
      return { from: bucket.from, to: bucket.to, total, counts };
    });
  }

  /**
   * Takes over up to `limit` tasks still `initiated` whose lease has lapsed, oldest first. Only
   * tasks a producer accepted while the broker was unreachable carry a lease; one recorded
   * `initiated` without a lease is its sender's to answer for (it told its caller whether the task
   * was published), so it is never taken. Each claim inserts the lease's next epoch into
   * `task_leases` first: that insert is what makes one claimer win (see TaskLeaseDocument).
   */
  async claimOrphans(owner: string, leaseMs: number, limit: number): Promise<TaskEnvelope[]> {
    checkOwner(owner);
    checkPositiveInteger('leaseMs', leaseMs);
    checkPositiveInteger('limit', limit, TASK_LIST_MAX_LIMIT);
    this.assertAvailable();
    const now = new Date();
    const candidates = await this.tasks
      .find({ status: { $eq: 'initiated' }, lease_until: { $lt: now } })
      .sort({ created_at: 1, task_id: 1 })
      .limit(limit)
      .lean<StoredTaskDocument[]>();
    const claimed: TaskEnvelope[] = [];
    for (const candidate of candidates) {
      const task = await this.takeLease(candidate, owner, leaseMs);
      if (task && task.status === 'initiated') claimed.push(toTaskEnvelope(task));
    }
    return claimed;
  }

  async scheduledTasks(after: string | null, limit: number): Promise<ScheduledTask[]> {
    checkPositiveInteger('limit', limit, TASK_LIST_MAX_LIMIT);
    this.assertAvailable();
    const filter: Record<string, unknown> = { status: { $eq: 'scheduled' } };
    if (after !== null) filter._id = { $gt: String(after) };
    const docs = await this.tasks
      .find(filter)
      .sort({ _id: 1 })
      .limit(limit)
      .lean<StoredTaskDocument[]>();
    return docs.flatMap((doc) =>
      doc.run_at && doc.name !== undefined
        ? [{ task: toTaskEnvelope(doc), runAt: doc.run_at }]
        : [],
    );
  }

  /**
   * Extends `owner`'s lease on the tasks it still holds `initiated`. A lease that is about to
   * lapse (or has) is claimed again like an orphan, so it stays `owner`'s only if no one else
   * claimed it first.
   */
  async renewLease(owner: string, taskIds: string[], leaseMs: number): Promise<string[]> {
    checkOwner(owner);
    checkPositiveInteger('leaseMs', leaseMs);
    if (!Array.isArray(taskIds) || !taskIds.every((id) => typeof id === 'string' && id !== '')) {
      throw new TaskQueryInvalidError('taskIds', 'must be a list of task ids');
    }
    this.assertAvailable();
    const docs = await this.readMany(taskIds, {
      status: 1,
      owner: 1,
      lease_until: 1,
      lease_epoch: 1,
    });
    const now = Date.now();
    const until = new Date(now + leaseMs);
    const margin = Math.min(LEASE_MARGIN, leaseMs / 2);
    const owned = new Set<string>();
    const extensions: AnyBulkWriteOperation<TaskDocument>[] = [];
    const extended: string[] = [];
    for (const doc of docs.values()) {
      if (doc.status !== 'initiated' || doc.owner !== owner) continue;
      if (doc.lease_until && doc.lease_until.getTime() > now + margin) {
        extensions.push({
          updateOne: { filter: { _id: doc._id }, update: { $max: { lease_until: until } } },
        });
        extended.push(doc._id);
        owned.add(doc._id);
      } else if ((await this.takeLease(doc, owner, leaseMs))?.status === 'initiated') {
        owned.add(doc._id);
      }
    }
    if (extensions.length > 0) {
      const server = this.server ?? (await this.detect());
      const refused = await this.bulkWrite(extensions, extended, server.updatesPerChunk);
      for (const id of refused.keys()) owned.delete(id);
    }
    return taskIds.filter((id) => owned.has(id));
  }

  /** Claims the next epoch of a task's lease; the task as it is after the claim, or null. */
  private async takeLease(
    doc: StoredTaskDocument,
    owner: string,
    leaseMs: number,
  ): Promise<StoredTaskDocument | null> {
    const epoch = (doc.lease_epoch ?? 0) + 1;
    try {
      await this.leases.create({
        _id: `${doc._id}:${epoch}`,
        task_id: doc._id,
        owner,
        created_at: new Date(),
      });
    } catch (error) {
      if (codeOf(error) === DUPLICATE_KEY) return null;
      throw error;
    }
    return this.tasks
      .findOneAndUpdate(
        { _id: doc._id },
        {
          $set: { owner, lease_until: new Date(Date.now() + leaseMs) },
          $max: { lease_epoch: epoch },
        },
        { returnDocument: 'after' },
      )
      .lean<StoredTaskDocument>();
  }

  private assertAvailable(): void {
    if (this.closed) throw new ArchiveUnavailableError('Cogman has shut down');
    if (!this.connected) {
      throw new ArchiveUnavailableError(`not connected to ${redactUri(this.uri)}`);
    }
  }

  /** Connects, trying again with backoff for as long as it takes (or until closed). */
  private async open(): Promise<void> {
    const options = mongoConnectOptions(this.uri);
    for (let attempt = 0; !this.closed; attempt++) {
      try {
        await this.connection.openUri(this.uri, options);
        break;
      } catch (error) {
        if (this.closed) return;
        if (attempt === 0) {
          this.logger.warn(
            `MongoDB archive unreachable at ${redactUri(this.uri)} (${messageOf(error)}); ` +
              'tasks keep running, status changes wait in memory for it (archiveBufferSize) and ' +
              'Cogman keeps trying',
          );
        }
        await this.pause(Math.min(15_000, 500 * 2 ** attempt));
      }
    }
    if (this.closed) return;
    this.opened = true;
    this.logger.log(`MongoDB archive connected (${redactUri(this.uri)})`);
    await this.prepare();
    this.writer.wake();
  }

  /** Once per connection (and again after a reconnection): the write mode and the indexes. */
  private prepare(): Promise<void> {
    this.preparing ??= (async () => {
      try {
        await this.detect();
        await this.ensureIndexes();
      } catch (error) {
        if (!this.closed) {
          this.logger.warn(
            `Could not check the MongoDB archive's indexes (${messageOf(error)}); ` +
              'trying again on the next connection',
          );
        }
      } finally {
        this.preparing = undefined;
      }
    })();
    return this.preparing;
  }

  private async detect(): Promise<ServerTraits> {
    this.server ??= await this.detectServer();
    this.writer.tune({ batchDelay: this.server.batchDelay });
    return this.server;
  }

  /** FerretDB 1.x (which says so in `buildInfo`) needs `checked` writes and small commands. */
  private async detectServer(): Promise<ServerTraits> {
    const info = await this.connection.db!.admin().command({ buildInfo: 1 });
    const version: unknown = info.ferretdbVersion;
    const ferretdb1 = typeof version === 'string' && /^v?1\./.test(version);
    const chosen = this.settings.writes ?? 'auto';
    return {
      mode: chosen !== 'auto' ? chosen : ferretdb1 ? 'checked' : 'guarded',
      updatesPerChunk: ferretdb1 ? FERRETDB_UPDATES_PER_CHUNK : CHUNK_SIZE,
      batchDelay: ferretdb1 ? FERRETDB_BATCH_DELAY : BATCH_DELAY,
    };
  }

  /**
   * Creates the indexes that are missing and changes a TTL index whose lifetime differs from
   * `mongoTtl` (with `collMod`, when the server has it). Nothing is dropped. Without TTL indexes
   * (FerretDB 1.x), a periodic delete of expired documents stands in for them.
   */
  private async ensureIndexes(): Promise<void> {
    const ttl = ttlIndex(this.options.mongoTtl);
    const tasksTtl = await this.ensureCollectionIndexes(TASKS_COLLECTION, [...TASK_INDEXES, ttl]);
    const leasesTtl = await this.ensureCollectionIndexes(TASK_LEASES_COLLECTION, [ttl]);
    if (!tasksTtl || !leasesTtl) this.startSweeper();
  }

  /** Returns whether the server expires the collection's documents itself (a TTL index). */
  private async ensureCollectionIndexes(
    collectionName: string,
    desired: ArchiveIndex[],
  ): Promise<boolean> {
    const db = this.connection.db!;
    const collection = db.collection(collectionName);
    let existing: ExistingIndex[];
    try {
      existing = (await collection.listIndexes().toArray()) as ExistingIndex[];
    } catch (error) {
      if (codeOf(error) !== NAMESPACE_NOT_FOUND) throw error;
      existing = [];
    }
    let expires = hasTtlIndex(existing);
    for (const action of planIndexes(existing, desired)) {
      if (action.kind === 'create') {
        const { key, options } = action.index;
        const isTtl = options.expireAfterSeconds !== undefined;
        if (isTtl && this.ttlUnsupported) continue;
        try {
          await collection.createIndex(key, options);
          if (isTtl) expires = true;
        } catch (error) {
          if (isTtl && isUnsupported(error)) {
            this.ttlUnsupported = true;
            this.logger.warn(
              `This MongoDB-compatible server has no TTL indexes (${messageOf(error)}): Cogman ` +
                `deletes archived tasks older than mongoTtl itself, every ${sweepInterval(this.options.mongoTtl) / 1000} s`,
            );
          } else {
            this.logger.warn(
              `Could not create the index "${options.name}" on ${collectionName}: ${messageOf(error)}`,
            );
          }
        }
      } else if (action.kind === 'retime') {
        try {
          await db.command({
            collMod: collectionName,
            index: { name: action.name, expireAfterSeconds: action.to },
          });
          this.logger.log(
            `Changed the TTL index "${action.name}" on ${collectionName} from ${action.from} s ` +
              `to ${action.to} s (mongoTtl)`,
          );
        } catch (error) {
          this.logger.warn(
            `The TTL index "${action.name}" on ${collectionName} removes documents after ` +
              `${action.from} s, but mongoTtl asks for ${action.to} s, and this server cannot ` +
              `change an index in place (collMod: ${messageOf(error)}). Documents keep expiring ` +
              `after ${action.from} s; drop the index to have Cogman create it with mongoTtl.`,
          );
        }
      } else {
        this.logger.warn(
          `The index "${action.index.options.name}" on ${collectionName} was not created: ` +
            `${action.reason} (existing index "${action.existing.name}")`,
        );
      }
    }
    return expires;
  }

  /** Deletes expired documents periodically, where the server has no TTL index. */
  private startSweeper(): void {
    if (this.sweeper || this.closed) return;
    const sweep = async () => {
      if (!this.connected) return;
      const before = new Date(Date.now() - this.options.mongoTtl);
      try {
        await this.tasks.deleteMany({ created_at: { $lt: before } });
        await this.leases.deleteMany({ created_at: { $lt: before } });
      } catch (error) {
        this.logger.debug?.(`Sweep of expired archived tasks failed: ${messageOf(error)}`);
      }
    };
    this.sweeper = setInterval(() => void sweep(), sweepInterval(this.options.mongoTtl));
    this.sweeper.unref();
    void sweep();
  }

  /** The sink of the writer: one batch, as ordered bulk writes. */
  private async writeBatch(
    changes: readonly TaskStatusChange[],
  ): Promise<ReadonlyMap<string, Error> | void> {
    if (this.closed) throw new ArchiveUnavailableError('Cogman has shut down');
    if (!this.opened) throw new ArchiveUnavailableError('not connected yet');
    this.server ??= await this.detect();
    const plans = planTaskChanges(changes);
    const operations: AnyBulkWriteOperation<TaskDocument>[] = [];
    const owners: string[] = [];
    const add = (taskId: string, ops: AnyBulkWriteOperation<TaskDocument>[]) => {
      operations.push(...ops);
      for (let i = 0; i < ops.length; i++) owners.push(taskId);
    };
    if (this.server.mode === 'guarded') {
      for (const plan of plans) add(plan.taskId, guardedOperations(plan));
    } else {
      const stored = await this.readMany(
        plans.map((plan) => plan.taskId),
        { status_rank: 1, name: 1 },
      );
      const inserts: [string, AnyBulkWriteOperation<TaskDocument>][] = [];
      const updates: [string, AnyBulkWriteOperation<TaskDocument>][] = [];
      for (const plan of plans) {
        const doc = stored.get(plan.taskId);
        const state: StoredTaskState | null = doc
          ? { rank: doc.status_rank ?? 0, described: doc.name !== undefined }
          : null;
        const operation = checkedOperation(plan, state);
        if (operation)
          ('insertOne' in operation ? inserts : updates).push([plan.taskId, operation]);
      }
      // One operation per task, so their order does not matter: the inserts go in one command.
      for (const [taskId, operation] of [...inserts, ...updates]) add(taskId, [operation]);
    }
    return this.bulkWrite(operations, owners, this.server.updatesPerChunk);
  }

  /**
   * Sends ordered operations, in chunks of at most `updatesPerChunk` updates. An operation the
   * server refuses for good (a write error other than a duplicate key from a concurrent insert),
   * or one that cannot even be sent (a document too large to encode), gives up its task's
   * remaining operations; the rest is sent on. Any other error is thrown, for the writer to
   * retry the batch (every operation can be sent again).
   */
  private async bulkWrite(
    operations: AnyBulkWriteOperation<TaskDocument>[],
    owners: string[],
    updatesPerChunk: number,
  ): Promise<ReadonlyMap<string, Error>> {
    const failures = new Map<string, Error>();
    let start = 0;
    while (start < operations.length) {
      let end = start;
      let updates = 0;
      while (end < operations.length && end - start < CHUNK_SIZE) {
        if (!('insertOne' in operations[end]) && ++updates > updatesPerChunk) break;
        end++;
      }
      await this.sendOrdered(operations.slice(start, end), owners.slice(start, end), failures);
      start = end;
    }
    return failures;
  }

  private async sendOrdered(
    ops: AnyBulkWriteOperation<TaskDocument>[],
    owners: string[],
    failures: Map<string, Error>,
  ): Promise<void> {
    const live = (_op: unknown, i: number) => !failures.has(owners[i]);
    ops = ops.filter(live);
    owners = owners.filter(live);
    if (ops.length === 0) return;
    try {
      // Straight to the driver: the operations are built whole by Cogman, so Mongoose's casting
      // and validation of each one would only cost CPU on the task path.
      await this.tasks.collection.bulkWrite(ops as Parameters<mongo.Collection['bulkWrite']>[0], {
        ordered: true,
      });
      return;
    } catch (error) {
      const refused = firstWriteError(error);
      if (refused) {
        if (refused.code === DUPLICATE_KEY) throw error;
        this.giveUp(owners[refused.index], refused.message, error, failures);
        await this.sendOrdered(
          ops.slice(refused.index + 1),
          owners.slice(refused.index + 1),
          failures,
        );
        return;
      }
      if (isTransient(error) || !this.connected) throw error;
      // Refused before it reached the server: find the task in halves, keeping the order.
      const tasks = [...new Set(owners)];
      if (tasks.length === 1) {
        this.giveUp(tasks[0], messageOf(error), error, failures);
        return;
      }
      const middle = owners.indexOf(tasks[Math.floor(tasks.length / 2)]);
      await this.sendOrdered(ops.slice(0, middle), owners.slice(0, middle), failures);
      await this.sendOrdered(ops.slice(middle), owners.slice(middle), failures);
    }
  }

  private giveUp(taskId: string, reason: string, cause: unknown, failures: Map<string, Error>) {
    const error = new ArchiveRecordRefusedError(taskId, reason, { cause });
    failures.set(taskId, error);
    this.logger.error(`${error.message}; that attempt is not archived`);
  }

  /**
   * Documents by id, in one query: on MongoDB through the `_id` index; on FerretDB 1.x one scan
   * of the collection, where a lookup per id would scan it once per id.
   */
  private async readMany(
    ids: string[],
    projection: Record<string, 1>,
  ): Promise<Map<string, StoredTaskDocument>> {
    const docs = await this.tasks
      .find({ _id: { $in: [...new Set(ids)] } }, projection)
      .lean<StoredTaskDocument[]>();
    return new Map(docs.map((doc) => [doc._id, doc]));
  }

  private pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const resume = () => {
        clearTimeout(timer);
        this.resumeOpening = undefined;
        resolve();
      };
      const timer = setTimeout(resume, ms);
      this.resumeOpening = resume;
    });
  }
}

function sweepInterval(ttl: number): number {
  return Math.min(SWEEP_INTERVAL.max, Math.max(SWEEP_INTERVAL.min, Math.floor(ttl / 10)));
}

function checkOwner(owner: unknown): void {
  if (typeof owner !== 'string' || owner === '') {
    throw new TaskQueryInvalidError('owner', 'must be a non-empty string');
  }
}

function checkPositiveInteger(field: string, value: unknown, max = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isSafeInteger(value) || (value as number) < 1 || (value as number) > max) {
    throw new TaskQueryInvalidError(field, `must be a whole number from 1 to ${max}`);
  }
}

/** The first write error of a bulk write the server answered, if that is what failed. */
function firstWriteError(
  error: unknown,
): { index: number; code: number | undefined; message: string } | undefined {
  const writeErrors = (error as { writeErrors?: unknown }).writeErrors;
  const first: unknown = Array.isArray(writeErrors) ? writeErrors[0] : writeErrors;
  if (typeof first !== 'object' || first === null) return undefined;
  const { index, code, errmsg } = first as { index?: unknown; code?: unknown; errmsg?: unknown };
  if (typeof index !== 'number') return undefined;
  return {
    index,
    code: typeof code === 'number' ? code : undefined,
    message: typeof errmsg === 'string' ? errmsg : 'refused',
  };
}

/**
 * Whether an error is the server's or the network's (worth trying again), rather than the driver
 * refusing the operation itself (a document it cannot encode, an invalid argument).
 */
function isTransient(error: unknown): boolean {
  return error instanceof mongo.MongoError && !(error instanceof mongo.MongoAPIError);
}

function codeOf(error: unknown): unknown {
  return (error as { code?: unknown } | null)?.code;
}

/** A server's way of saying it lacks a command or option (FerretDB: NotImplemented, 238). */
function isUnsupported(error: unknown): boolean {
  const code = codeOf(error);
  return (
    code === 238 ||
    code === 59 ||
    code === 115 ||
    /not (yet )?(implemented|supported)/i.test(messageOf(error))
  );
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Maps with at most `limit` calls in flight, keeping the order. */
async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const work = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, work));
  return results;
}
