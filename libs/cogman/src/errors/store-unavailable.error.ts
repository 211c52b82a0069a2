import { CogmanError } from './cogman.error';

/** The task log (Redis) did not answer in time. */
export class StoreUnavailableError extends CogmanError {
  readonly code = 'COGMAN_STORE_UNAVAILABLE';

  constructor(what: string, timeout: number) {
    super(`Redis did not answer ${what} within ${timeout} ms; it may be unreachable`);
  }
}
