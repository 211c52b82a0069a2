import { CogmanError } from './cogman.error';

/** The reason of `ctx.signal` when shutdown stops waiting for the handler; the task is redelivered. */
export class WorkerShutdownError extends CogmanError {
  readonly code = 'COGMAN_WORKER_SHUTDOWN';

  constructor() {
    super('The worker is shutting down; the task will be redelivered');
  }
}
