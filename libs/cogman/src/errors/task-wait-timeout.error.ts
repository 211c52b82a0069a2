import { CogmanError } from './cogman.error';

/** What `waitForResult` rejects with when the task did not finish within its `timeout`. */
export class TaskWaitTimeoutError extends CogmanError {
  readonly code = 'COGMAN_TASK_WAIT_TIMEOUT';

  constructor(
    readonly taskId: string,
    readonly timeout: number,
  ) {
    super(`Task ${taskId} did not finish within ${timeout} ms`);
  }
}
