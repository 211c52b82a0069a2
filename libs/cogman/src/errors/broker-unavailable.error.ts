import { CogmanError } from './cogman.error';

/** No connection to RabbitMQ could be made. */
export class BrokerUnavailableError extends CogmanError {
  readonly code = 'COGMAN_BROKER_UNAVAILABLE';

  constructor(uri: string, reason: string, options?: ErrorOptions) {
    super(`Could not connect to RabbitMQ at ${uri}: ${reason}`, options);
  }
}
