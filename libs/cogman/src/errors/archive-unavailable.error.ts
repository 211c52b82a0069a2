import { CogmanError } from './cogman.error';

/** The MongoDB archive cannot answer now: it is unreachable, or Cogman has shut down. */
export class ArchiveUnavailableError extends CogmanError {
  readonly code = 'COGMAN_ARCHIVE_UNAVAILABLE';

  constructor(reason: string, options?: ErrorOptions) {
    super(`The MongoDB archive is unavailable: ${reason}`, options);
  }
}
