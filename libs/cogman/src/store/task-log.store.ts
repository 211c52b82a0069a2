import type { EncodedPayload, TaskEnvelope, TaskRecord, TaskStatus } from '../task';

/** One status change of one attempt. */
export interface TaskStatusChange {
  taskId: string;
  status: TaskStatus;
  /** When it happened. */
  at: Date;
  failError?: string;
  duration?: number;
  /** What the handler returned, with its `success`. */
  result?: EncodedPayload;
  /** Why the handler's return value is not recorded. */
  resultError?: string;
  /** The last progress the handler reported, as JSON text. */
  progress?: string;
  /** The retries that apply, once a worker knows them (the handler's when the task set none). */
  retry?: number;
  /** The attempt itself: fills in a record that does not exist yet (or lost these fields). */
  task?: TaskEnvelope;
  /** When a `scheduled` attempt is due. */
  runAt?: Date;
  /** When a worker started the attempt's handler (with its outcome, or a late `in_progress`). */
  startedAt?: Date;
  /**
   * Applies only if the attempt with this id has not been cancelled (checked in the same step):
   * the next attempt of a task is never created after its previous one was cancelled.
   */
  unlessCancelled?: string;
  /** Archive only: the producer holding an unpublished task, and until when. */
  lease?: { owner: string; until: Date };
}

export interface TaskStatusResult {
  /** False when the record already had this status or a later one (or the guard vetoed it). */
  applied: boolean;
  /** The store was unreachable: the change waits to be written, and `applied` is assumed. */
  deferred?: boolean;
  /** The status before the change; null for a new record; `cancelled` when the guard vetoed it. */
  previous: TaskStatus | null;
  /** Whether the record holds the attempt's description after the change (unknown: undefined). */
  described?: boolean;
}

/** What a worker reads of an attempt before running it (see `TaskLogStore.inspect`). */
export interface AttemptState {
  status: TaskStatus | null;
  described: boolean;
  /** Times the attempt was received again (not counting the first delivery). */
  redeliveries: number;
}

/** A record with the attempt as it travels (encoded payload, settings as sent). */
export interface StoredTask {
  record: TaskRecord;
  task: TaskEnvelope;
}

/**
 * Where the status of every attempt is kept. Changes apply atomically and only forwards.
 * A `scheduled` change also puts the attempt on the schedule (by `runAt`); any later change
 * takes it off, in the same step.
 */
export interface TaskLogStore {
  /** Whether the store is connected now (writes to a disconnected store wait for it). */
  readonly available: boolean;
  /**
   * How many times the store has connected (or, in a Redis Cluster, lost a node to a failover):
   * a new connection may find its data gone, and a promoted replica may lack the last writes.
   */
  readonly connections: number;
  record(change: TaskStatusChange): Promise<TaskStatusResult>;
  get(taskId: string): Promise<TaskRecord | null>;
  /** The record and the attempt needed to publish it. */
  load(taskId: string): Promise<StoredTask | null>;
  /**
   * Takes up to `limit` attempts due at `now` off the schedule, each for `leaseMs`: several
   * schedulers never take the same one, and one a scheduler took but did not publish before its
   * lease ran out (its process died) is due again.
   */
  claimDue(now: Date, limit: number, leaseMs: number): Promise<string[]>;
  /** Takes one attempt off the schedule now (run now); false if it was not on it. */
  claim(taskId: string, now: Date, leaseMs: number): Promise<boolean>;
  /** Gives up a claim without publishing (the attempt was cancelled, or is gone). */
  release(taskId: string): Promise<void>;
  /**
   * What a worker needs to know of an attempt it receives again (or cannot vouch for): its
   * status, whether its record holds its description, and how many times it has been received
   * again, this time counted (one step: two workers receiving it count twice).
   */
  inspect(taskId: string, { redelivered }: { redelivered: boolean }): Promise<AttemptState>;
}

export const TASK_LOG_STORE = Symbol('cogman:task-log-store');
