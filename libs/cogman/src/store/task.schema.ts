import { Prop, Schema, SchemaFactory } from '@nestjs/mongoose';
import { TASK_STATUSES, type BackoffPolicy, type TaskPriority, type TaskStatus } from '../task';

/** Name of Cogman's collection of task attempts (in the database of `mongoUri`). */
export const TASKS_COLLECTION = 'tasks';
/** Name of the collection of lease claims (see `TaskLeaseDocument`). */
export const TASK_LEASES_COLLECTION = 'task_leases';

/**
 * A header given at send time. Headers are stored as name/value pairs rather than as an object
 * because header names may contain "." or start with "$", which MongoDB-compatible servers refuse
 * as field names (FerretDB rejects them everywhere).
 */
@Schema({ _id: false, versionKey: false })
export class TaskHeaderDocument {
  @Prop({ type: String, required: true })
  name!: string;

  @Prop({ type: String, required: true })
  value!: string;
}

export const TaskHeaderSchema = SchemaFactory.createForClass(TaskHeaderDocument);

/**
 * One attempt of a task in the archive, with the field names of the Go library. `_id` is the
 * task id: single-document reads and writes go through the primary key, which is also the only
 * key FerretDB's SQLite backend looks up without scanning the collection.
 */
@Schema({
  collection: TASKS_COLLECTION,
  versionKey: false,
  // Cogman creates its indexes itself (task-archive.indexes.ts), without dropping any.
  autoIndex: false,
  autoCreate: false,
  // Fail at once instead of queueing in Mongoose while disconnected: Cogman buffers and retries.
  bufferCommands: false,
})
export class TaskDocument {
  @Prop({ type: String, required: true })
  _id!: string;

  @Prop({ type: String, required: true })
  task_id!: string;

  @Prop({ type: String })
  name?: string;

  @Prop({ type: String })
  original_task_id?: string;

  @Prop({ type: String, default: undefined })
  primary_key?: string | null;

  @Prop({ type: Number })
  retry?: number;

  @Prop({ type: Number })
  attempt?: number;

  /** Milliseconds an attempt may run, when given at send time. */
  @Prop({ type: Number })
  timeout?: number;

  /** The backoff policy given at send time. */
  @Prop({ type: Object })
  backoff?: BackoffPolicy;

  @Prop({ type: Buffer })
  payload?: Buffer;

  @Prop({ type: String, enum: ['json', 'binary'] })
  payload_type?: 'json' | 'binary';

  @Prop({ type: String, enum: ['high', 'low'] })
  priority?: TaskPriority;

  @Prop({ type: String, enum: TASK_STATUSES, required: true })
  status!: TaskStatus;

  /** `TASK_STATUS_RANK` of `status`; 0 until the first status change is applied. */
  @Prop({ type: Number, required: true })
  status_rank!: number;

  @Prop({ type: String })
  fail_error?: string;

  /** Milliseconds the handler ran. */
  @Prop({ type: Number })
  duration?: number;

  @Prop({ type: [TaskHeaderSchema], default: undefined })
  headers?: TaskHeaderDocument[];

  @Prop({ type: Date, required: true })
  created_at!: Date;

  @Prop({ type: Date })
  updated_at?: Date;

  /** When a `scheduled` attempt is due. */
  @Prop({ type: Date })
  run_at?: Date;

  /** The producer holding this task while it is unpublished (re-enqueue support). */
  @Prop({ type: String })
  owner?: string;

  @Prop({ type: Date })
  lease_until?: Date;

  /** Number of the last lease claim (see `TaskLeaseDocument`); 0 or absent for the sender's. */
  @Prop({ type: Number })
  lease_epoch?: number;
}

export const TaskSchema = SchemaFactory.createForClass(TaskDocument);

/**
 * One claim of a task's lease. Its `_id` is `<task id>:<epoch>`, so of all the processes that
 * try to take a lapsed lease at once, exactly one inserts it: a unique insert is atomic on every
 * MongoDB-compatible server, where a conditional update is not (FerretDB 1.x reads and then
 * replaces a document without a lock, so two `findOneAndUpdate` can both match it).
 */
@Schema({
  collection: TASK_LEASES_COLLECTION,
  versionKey: false,
  autoIndex: false,
  autoCreate: false,
  bufferCommands: false,
})
export class TaskLeaseDocument {
  @Prop({ type: String, required: true })
  _id!: string;

  @Prop({ type: String, required: true })
  task_id!: string;

  @Prop({ type: String, required: true })
  owner!: string;

  @Prop({ type: Date, required: true })
  created_at!: Date;
}

export const TaskLeaseSchema = SchemaFactory.createForClass(TaskLeaseDocument);

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
