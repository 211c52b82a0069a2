import { CogmanError } from './cogman.error';

/** An `@OnTaskEvent` listener cannot be used (not on a singleton provider, unknown event). */
export class TaskEventListenerInvalidError extends CogmanError {
  readonly code = 'COGMAN_TASK_EVENT_LISTENER_INVALID';

  constructor(
    readonly listener: string,
    reason: string,
  ) {
    super(`Invalid task event listener ${listener}: ${reason}`);
  }
}
