import { CogmanError } from './cogman.error';

/**
 * Throw it from a handler when trying again cannot help (bad input, a refused request): the
 * attempt is recorded `failed` with its message and no retry follows.
 */
export class TaskUnrecoverableError extends CogmanError {
  readonly code = 'COGMAN_TASK_UNRECOVERABLE';
}
