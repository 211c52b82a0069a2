import { CogmanError } from './cogman.error';

/** An operation needs the MongoDB archive, and no `mongoUri` is configured. */
export class ArchiveNotConfiguredError extends CogmanError {
  readonly code = 'COGMAN_ARCHIVE_NOT_CONFIGURED';

  constructor(action: string) {
    super(
      `Cannot ${action}: it needs the MongoDB archive (the mongoUri option); the Redis log only finds a task by its id`,
    );
  }
}
