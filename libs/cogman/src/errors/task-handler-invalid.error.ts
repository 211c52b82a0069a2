import { CogmanError } from './cogman.error';

/** A handler cannot run tasks (no `handle` method, empty name, ...). */
export class TaskHandlerInvalidError extends CogmanError {
  readonly code = 'COGMAN_TASK_HANDLER_INVALID';

  constructor(
    readonly taskName: string,
    reason: string,
  ) {
    super(`Invalid handler for task "${taskName}": ${reason}`);
  }
}
