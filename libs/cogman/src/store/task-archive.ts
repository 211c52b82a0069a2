import type { TaskEnvelope, TaskPriority, TaskRecord, TaskStatus } from '../task';
import type { TaskStatusChange } from './task-log.store';

/** Filters of a task listing; every field optional. Dates bound `createdAt`, inclusive. */
export interface TaskListQuery {
  status?: TaskStatus[];
  name?: string;
  priority?: TaskPriority;
  primaryKey?: string;
  originalTaskId?: string;
  /** Text the error of a failed attempt contains (ignoring case). */
  error?: string;
  from?: Date;
  to?: Date;
  /** Newest first (default) or oldest first, by `createdAt` then `taskId`. */
  order?: 'desc' | 'asc';
  /** Page size; the archive caps it (see `TASK_LIST_MAX_LIMIT`). */
  limit: number;
  /** Opaque position returned as `nextCursor` by the previous page. */
  cursor?: string;
}

export const TASK_LIST_MAX_LIMIT = 500;

export interface TaskListPage {
  items: TaskRecord[];
  /** Number of tasks matching the filters, over all pages. */
  total: number;
  /** Cursor of the next page; null on the last one. */
  nextCursor: string | null;
}

/** Counts per status of the tasks created in `[from, to)`, split into `buckets` equal intervals. */
export interface TaskCountQuery {
  from: Date;
  to: Date;
  buckets: number;
  name?: string;
}

export interface TaskCountBucket {
  from: Date;
  to: Date;
  total: number;
  counts: Record<TaskStatus, number>;
}

/** Whether the archive answers now; every part of it has this. */
export interface ArchivePresence {
  readonly connected: boolean;
}

/** What the task log gives the archive: every status change. */
export interface ArchiveWrites extends ArchivePresence {
  /**
   * Archives a status change, rank-guarded like the Redis log. The promise settles when the
   * change is durably written (callers on the hot path ignore it; the offline path awaits it).
   */
  write(change: TaskStatusChange): Promise<void>;
}

/** What the client, the REST API and the task log read. */
export interface ArchiveReads extends ArchivePresence {
  get(taskId: string): Promise<TaskRecord | null>;
  list(query: TaskListQuery): Promise<TaskListPage>;
  count(query: TaskCountQuery): Promise<TaskCountBucket[]>;
}

/** What the offline buffer needs to make tasks accepted while the broker is away durable. */
export interface ArchiveLeases extends ArchiveWrites {
  /**
   * Re-enqueue support: takes over up to `limit` tasks still `initiated` (accepted but never
   * published) whose owner's lease has expired, making `owner` their owner until `leaseMs` from
   * now. Atomic per task, so several producers never claim one task twice.
   */
  claimOrphans(owner: string, leaseMs: number, limit: number): Promise<TaskEnvelope[]>;
  /**
   * Extends the lease of `owner` on the given tasks (offline tasks it still holds), and returns
   * the ids it still owns (a task taken over after a lapsed lease is no longer its own).
   */
  renewLease(owner: string, taskIds: string[], leaseMs: number): Promise<string[]>;
}

/** What the scheduler restores its schedule from after Redis lost its data. */
export interface ArchiveSchedule extends ArchivePresence {
  /**
   * Tasks the archive holds as `scheduled`, in task id order after `after` (exclusive), at most
   * `limit`: what the schedule in Redis should hold, for restoring it after Redis lost its data.
   */
  scheduledTasks(after: string | null, limit: number): Promise<ScheduledTask[]>;
}

/** What starts and stops the archive. */
export interface ArchiveLifecycle extends ArchivePresence {
  /** Changes waiting to be written. */
  readonly backlog: number;
  /** Starts connecting, in the background: boot never waits for the archive. */
  start(): void;
  /** Writes what is waiting, within `timeout` ms. */
  flush(timeout: number): Promise<void>;
  /** Stops writing (changes still waiting are given up: their `write` promises reject), and closes. */
  close(): Promise<void>;
}

/**
 * The durable archive of every attempt (MongoDB). Writes are batched and never block the task
 * path; they are retried while the archive is unreachable and caught up when it returns. Each
 * user depends on the part it uses.
 */
export interface TaskArchive
  extends ArchiveWrites, ArchiveReads, ArchiveLeases, ArchiveSchedule, ArchiveLifecycle {}

/** An attempt waiting for its due time. */
export interface ScheduledTask {
  task: TaskEnvelope;
  runAt: Date;
}

export const TASK_ARCHIVE = Symbol('cogman:task-archive');

/**
 * Token of Cogman's Mongoose connection (null without `mongoUri`): the one @nestjs/mongoose gives
 * a connection named `cogman` (`getConnectionToken('cogman')`), so an application can
 * `@InjectConnection('cogman')`.
 */
export const COGMAN_MONGO_CONNECTION = 'cogmanConnection';

/** Packages the MongoDB archive needs beside Cogman's own (an optional peer dependency). */
export const ARCHIVE_PACKAGES = ['mongoose'];
