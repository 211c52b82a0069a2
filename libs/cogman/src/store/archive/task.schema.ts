import { Schema } from 'mongoose';
import { TASK_STATUSES, type BackoffPolicy, type TaskPriority, type TaskStatus } from '../../task';

/** Name of Cogman's collection of task attempts (in the database of `mongoUri`). */
export const TASKS_COLLECTION = 'tasks';
/** Name of the collection of lease claims (see `TaskLeaseDocument`). */
export const TASK_LEASES_COLLECTION = 'task_leases';

/**
 * A header given at send time. Headers are stored as name/value pairs rather than as an object
 * because header names may contain "." or start with "$", which MongoDB-compatible servers refuse
 * as field names (FerretDB rejects them everywhere).
 */
export interface TaskHeaderDocument {
  name: string;
  value: string;
}

/**
 * One attempt of a task in the archive, with the field names of the Go library. `_id` is the
 * task id: single-document reads and writes go through the primary key, which is also the only
 * key FerretDB's SQLite backend looks up without scanning the collection.
 */
export interface TaskDocument {
  _id: string;
  task_id: string;
  name?: string;
  original_task_id?: string;
  primary_key?: string | null;
  retry?: number;
  attempt?: number;
  /** Milliseconds an attempt may run, when given at send time. */
  timeout?: number;
  /** The backoff policy given at send time. */
  backoff?: BackoffPolicy;
  payload?: Buffer;
  payload_type?: 'json' | 'binary';
  priority?: TaskPriority;
  status: TaskStatus;
  /** `TASK_STATUS_RANK` of `status`; 0 until the first status change is applied. */
  status_rank: number;
  fail_error?: string;
  /** What the handler returned (JSON text or bytes, as `result_type` says), with `success`. */
  result?: Buffer;
  result_type?: 'json' | 'binary';
  /** Why the handler's return value is not recorded. */
  result_error?: string;
  /** The last progress the handler reported, as JSON text. */
  progress?: string;
  /** Milliseconds the handler ran. */
  duration?: number;
  /** When a worker started the handler. */
  started_at?: Date;
  headers?: TaskHeaderDocument[];
  created_at: Date;
  updated_at?: Date;
  /** When a `scheduled` attempt is due. */
  run_at?: Date;
  /** The producer holding this task while it is unpublished (re-enqueue support). */
  owner?: string;
  lease_until?: Date;
  /** Number of the last lease claim (see `TaskLeaseDocument`); 0 or absent for the sender's. */
  lease_epoch?: number;
}

/**
 * One claim of a task's lease. Its `_id` is `<task id>:<epoch>`, so of all the processes that
 * try to take a lapsed lease at once, exactly one inserts it: a unique insert is atomic on every
 * MongoDB-compatible server, where a conditional update is not (FerretDB 1.x reads and then
 * replaces a document without a lock, so two `findOneAndUpdate` can both match it).
 */
export interface TaskLeaseDocument {
  _id: string;
  task_id: string;
  owner: string;
  created_at: Date;
}

/**
 * Options of Cogman's schemas: it creates its indexes and collections itself
 * (task-archive.indexes.ts, without dropping any), and fails at once instead of queueing in
 * Mongoose while disconnected (Cogman buffers and retries).
 */
const SCHEMA_OPTIONS = {
  versionKey: false,
  autoIndex: false,
  autoCreate: false,
  bufferCommands: false,
} as const;

const TaskHeaderSchema = new Schema<TaskHeaderDocument>(
  { name: { type: String, required: true }, value: { type: String, required: true } },
  { _id: false, versionKey: false },
);

export const TaskSchema = new Schema<TaskDocument>(
  {
    _id: { type: String, required: true },
    task_id: { type: String, required: true },
    name: { type: String },
    original_task_id: { type: String },
    primary_key: { type: String, default: undefined },
    retry: { type: Number },
    attempt: { type: Number },
    timeout: { type: Number },
    backoff: { type: Object },
    payload: { type: Buffer },
    payload_type: { type: String, enum: ['json', 'binary'] },
    priority: { type: String, enum: ['high', 'low'] },
    status: { type: String, enum: TASK_STATUSES, required: true },
    status_rank: { type: Number, required: true },
    fail_error: { type: String },
    result: { type: Buffer },
    result_type: { type: String, enum: ['json', 'binary'] },
    result_error: { type: String },
    progress: { type: String },
    duration: { type: Number },
    started_at: { type: Date },
    headers: { type: [TaskHeaderSchema], default: undefined },
    created_at: { type: Date, required: true },
    updated_at: { type: Date },
    run_at: { type: Date },
    owner: { type: String },
    lease_until: { type: Date },
    lease_epoch: { type: Number },
  },
  { ...SCHEMA_OPTIONS, collection: TASKS_COLLECTION },
);

export const TaskLeaseSchema = new Schema<TaskLeaseDocument>(
  {
    _id: { type: String, required: true },
    task_id: { type: String, required: true },
    owner: { type: String, required: true },
    created_at: { type: Date, required: true },
  },
  { ...SCHEMA_OPTIONS, collection: TASK_LEASES_COLLECTION },
);

/** An index Cogman keeps on one of its collections. */
export interface ArchiveIndex {
  key: Record<string, 1 | -1>;
  options: { name: string; unique?: boolean; expireAfterSeconds?: number };
}

/** Secondary indexes of `tasks`: for lookups by id and for listing by status, name, key and date. */
export const TASK_INDEXES: readonly ArchiveIndex[] = [
  { key: { task_id: 1 }, options: { name: 'task_id_unique', unique: true } },
  { key: { status: 1, created_at: -1 }, options: { name: 'status_created_at' } },
  { key: { name: 1, created_at: -1 }, options: { name: 'name_created_at' } },
  { key: { primary_key: 1, created_at: -1 }, options: { name: 'primary_key_created_at' } },
  { key: { original_task_id: 1 }, options: { name: 'original_task_id' } },
  { key: { created_at: -1, task_id: -1 }, options: { name: 'created_at_task_id' } },
];

/** The TTL index that removes a document `ttl` ms after its creation. */
export function ttlIndex(ttl: number): ArchiveIndex {
  return {
    key: { created_at: 1 },
    options: { name: 'created_at_ttl', expireAfterSeconds: ttlSeconds(ttl) },
  };
}

/** TTL indexes count in whole seconds; a partial second is rounded up. */
export function ttlSeconds(ttl: number): number {
  return Math.ceil(ttl / 1000);
}
