import { CogmanError } from './cogman.error';

/** No record of this task (unknown id, or expired from the log). */
export class TaskNotFoundError extends CogmanError {
  readonly code = 'COGMAN_TASK_NOT_FOUND';

  constructor(readonly taskId: string) {
    super(`Task ${taskId} was not found`);
  }
}
