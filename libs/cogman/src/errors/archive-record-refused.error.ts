import { CogmanError } from './cogman.error';

/**
 * MongoDB refused the record of a task for good (a document too large, a field it rejects), so
 * that attempt is not archived. Other tasks are unaffected.
 */
export class ArchiveRecordRefusedError extends CogmanError {
  readonly code = 'COGMAN_ARCHIVE_RECORD_REFUSED';

  constructor(
    readonly taskId: string,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(`MongoDB refused the record of task ${taskId}: ${reason}`, options);
  }
}
