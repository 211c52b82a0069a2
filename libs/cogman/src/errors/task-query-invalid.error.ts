import { CogmanError } from './cogman.error';

/** A query of the task archive (listing, counts, leases) has a bad parameter. */
export class TaskQueryInvalidError extends CogmanError {
  readonly code = 'COGMAN_TASK_QUERY_INVALID';

  constructor(
    readonly field: string,
    readonly reason: string,
    options?: ErrorOptions,
  ) {
    super(`Invalid task query: "${field}" ${reason}`, options);
  }
}
