import { CogmanError } from './cogman.error';

/** The reason of `ctx.signal` when an attempt ran longer than its timeout. */
export class TaskTimeoutError extends CogmanError {
  readonly code = 'COGMAN_TASK_TIMEOUT';

  constructor(readonly timeout: number) {
    super(`Task timed out after ${timeout} ms`);
  }
}
