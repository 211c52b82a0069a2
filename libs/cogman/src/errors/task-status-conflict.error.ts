import { CogmanError } from './cogman.error';

/** An operation that the task's current status does not allow (cancel a finished task, ...). */
export class TaskStatusConflictError extends CogmanError {
  readonly code = 'COGMAN_TASK_STATUS_CONFLICT';

  constructor(
    readonly taskId: string,
    /** The task's status (a `TaskStatus`). */
    readonly status: string,
    action: string,
    why: string,
  ) {
    super(`Cannot ${action} task ${taskId}: it is ${status}; ${why}`);
  }
}
