import { CogmanError } from './cogman.error';

/** The broker is unreachable and the buffer of tasks waiting for it is full. */
export class OfflineBufferFullError extends CogmanError {
  readonly code = 'COGMAN_OFFLINE_BUFFER_FULL';

  constructor(
    readonly taskId: string,
    limit: number,
  ) {
    super(
      `Task ${taskId} was not accepted: RabbitMQ is unreachable and ${limit} tasks already wait for it (offlineBufferSize)`,
    );
  }
}
