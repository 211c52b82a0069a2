import { CogmanError } from './cogman.error';

/**
 * A status change was not archived: `archiveBufferSize` changes were already waiting for
 * MongoDB. The task itself is unaffected (Redis has the change).
 */
export class ArchiveBufferFullError extends CogmanError {
  readonly code = 'COGMAN_ARCHIVE_BUFFER_FULL';

  constructor(readonly size: number) {
    super(`The MongoDB archive buffer is full (${size} status changes waiting)`);
  }
}
