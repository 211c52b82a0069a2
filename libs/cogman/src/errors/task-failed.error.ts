import { CogmanError } from './cogman.error';

/** What `waitForResult` rejects with when the task's last attempt failed; `record` is its record. */
export class TaskFailedError extends CogmanError {
  readonly code = 'COGMAN_TASK_FAILED';

  constructor(
    readonly taskId: string,
    readonly failError: string | null,
    /** The record of the failed attempt (a `TaskRecord`). */
    readonly record: unknown,
  ) {
    super(`Task ${taskId} failed${failError ? `: ${failError}` : ''}`);
  }
}
