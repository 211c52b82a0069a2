import { CogmanError } from './cogman.error';

/** The reason of `ctx.signal` when the task was cancelled while its handler ran. */
export class TaskCancelledError extends CogmanError {
  readonly code = 'COGMAN_TASK_CANCELLED';

  constructor(readonly taskId: string) {
    super(`Task ${taskId} was cancelled`);
  }
}
