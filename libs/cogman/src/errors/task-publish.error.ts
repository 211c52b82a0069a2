import { CogmanError } from './cogman.error';

/** The broker did not confirm a task message (negative confirm, timeout or closed channel). */
export class TaskPublishError extends CogmanError {
  readonly code = 'COGMAN_TASK_NOT_PUBLISHED';

  constructor(
    readonly taskId: string,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(`Task ${taskId} was not published: ${reason}`, options);
  }
}
