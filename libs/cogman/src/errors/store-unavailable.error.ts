import { CogmanError } from './cogman.error';

/** The task log (Redis) did not answer in time. */
export class StoreUnavailableError extends CogmanError {
  readonly code = 'COGMAN_STORE_UNAVAILABLE';

  /**
   * `uri` (its password hidden) names the Redis waited for; `cause` is the last error seen;
   * `reason` replaces "did not answer … within …" when Redis answered with a refusal.
   */
  constructor(
    what: string,
    timeout: number,
    options: ErrorOptions & { uri?: string; reason?: string } = {},
  ) {
    const { uri, reason, ...errorOptions } = options;
    const message = (options.cause as { message?: unknown } | undefined)?.message;
    const last = typeof message === 'string' ? ` (last error: ${message})` : '';
    super(
      `Redis${uri ? ` at ${uri}` : ''} ${reason ?? `did not answer ${what} within ${timeout} ms; it may be unreachable`}${last}`,
      errorOptions,
    );
  }
}
