import type { TaskEnvelope, TaskRecord, TaskStatus } from '../task';

/** One status change of one attempt. */
export interface TaskStatusChange {
  taskId: string;
  status: TaskStatus;
  /** When it happened. */
  at: Date;
  failError?: string;
  duration?: number;
  /** The attempt itself: fills in a record that does not exist yet (or lost these fields). */
  task?: TaskEnvelope;
  /** When a `scheduled` attempt is due. */
  runAt?: Date;
  /** Archive only: the producer holding an unpublished task, and until when. */
  lease?: { owner: string; until: Date };
}

export interface TaskStatusResult {
  /** False when the record already had this status or a later one. */
  applied: boolean;
  /** The status before the change; null for a new record. */
  previous: TaskStatus | null;
}

/** Where the status of every attempt is kept. Changes apply atomically and only forwards. */
export interface TaskLogStore {
  record(change: TaskStatusChange): Promise<TaskStatusResult>;
  get(taskId: string): Promise<TaskRecord | null>;
}

export const TASK_LOG_STORE = Symbol('cogman:task-log-store');
