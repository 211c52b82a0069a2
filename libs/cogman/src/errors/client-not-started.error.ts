import { CogmanError } from './cogman.error';

/** A task was sent before the application started Cogman (`app.init()`), and it did not start. */
export class ClientNotStartedError extends CogmanError {
  readonly code = 'COGMAN_CLIENT_NOT_STARTED';

  constructor(waited: number) {
    super(
      `Cogman has not started: the task waited ${waited} ms (requestTimeout) for the application to start it. Call await app.init() (or app.listen()) before sending tasks; NestFactory.create() alone does not start it. A task sent from onModuleInit waits for the start: send it without awaiting it there, or from onApplicationBootstrap.`,
    );
  }
}
