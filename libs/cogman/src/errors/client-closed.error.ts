import { CogmanError } from './cogman.error';

/** The application is shutting down and no longer accepts tasks. */
export class ClientClosedError extends CogmanError {
  readonly code = 'COGMAN_CLIENT_CLOSED';

  constructor() {
    super('Cogman is shutting down and no longer accepts tasks');
  }
}
