import { CogmanError } from './cogman.error';

/** Two handlers were registered for one task name. */
export class TaskHandlerDuplicateError extends CogmanError {
  readonly code = 'COGMAN_TASK_HANDLER_DUPLICATE';

  constructor(
    readonly taskName: string,
    existing: string,
    duplicate: string,
  ) {
    super(
      `Task "${taskName}" has two handlers: ${existing} and ${duplicate}. ` +
        'Each task name must have exactly one handler.',
    );
  }
}
