import { CogmanError } from './cogman.error';

/** A task was rejected before anything was written or published. */
export class TaskInvalidError extends CogmanError {
  readonly code = 'COGMAN_TASK_INVALID';

  constructor(
    readonly field: string,
    readonly reason: string,
    options?: ErrorOptions,
  ) {
    super(`Invalid task: "${field}" ${reason}`, options);
  }
}
