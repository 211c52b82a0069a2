/** Every status a task attempt can have. */
export const TASK_STATUSES = [
  'initiated',
  'scheduled',
  'queued',
  'in_progress',
  'retry',
  'success',
  'failed',
  'cancelled',
] as const;

export type TaskStatus = (typeof TASK_STATUSES)[number];

/**
 * Status order: a change applies only when it moves a task forward. `initiated` (accepted, not
 * yet in the queue) and `scheduled` (waiting for its due time) are both first; finished statuses
 * share the top rank, so none replaces another (a late `queued` never overwrites `success`).
 */
export const TASK_STATUS_RANK: Readonly<Record<TaskStatus, number>> = {
  initiated: 1,
  scheduled: 1,
  queued: 2,
  in_progress: 3,
  retry: 4,
  success: 4,
  failed: 4,
  cancelled: 4,
};

/** A finished attempt: `retry` (a new attempt took over), `success`, `failed` or `cancelled`. */
export function isFinished(status: TaskStatus | null | undefined): boolean {
  return status != null && TASK_STATUS_RANK[status] === TASK_STATUS_RANK.success;
}

/** Whether a change from `current` to `next` moves the task forward. */
export function movesForward(current: TaskStatus | null | undefined, next: TaskStatus): boolean {
  return current == null || TASK_STATUS_RANK[next] > TASK_STATUS_RANK[current];
}

export function isTaskStatus(value: unknown): value is TaskStatus {
  return typeof value === 'string' && (TASK_STATUSES as readonly string[]).includes(value);
}
