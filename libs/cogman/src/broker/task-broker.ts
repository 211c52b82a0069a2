import type { ConsumeMessage } from 'amqplib';
import type { DeadLetterReason, TaskEnvelope } from '../task';

/**
 * The broker as the layers above it use it: publish an attempt and learn of its confirm, copy a
 * message to the dead-letter queue, know whether it is reachable. `TaskPublisher` is the one on
 * RabbitMQ; Cogman's testing kit has one in memory.
 */
export interface TaskBroker {
  /** Whether messages can be published now (false while the broker is unreachable). */
  readonly connected: boolean;
  /** Whether the application has started it (its first connection is made). */
  readonly started: boolean;
  /**
   * Resolves once it has started; rejects with `ClientNotStartedError` when the application does
   * not begin starting it within `requestTimeout`, or with the reason its start failed.
   */
  untilStarted(): Promise<void>;
  /** Resolves once the broker has confirmed the message. */
  publish(task: TaskEnvelope): Promise<void>;
  /** Copies a message to the dead-letter queue with the reason; resolves once confirmed. */
  deadLetter(
    msg: ConsumeMessage,
    queue: string,
    reason: DeadLetterReason,
    detail: string,
  ): Promise<void>;
  /**
   * Publishes a received message again to its queue, as it came (plus `headers`, when given): the
   * broker delivers it anew (not as a redelivery). Resolves once confirmed.
   */
  handBack(
    msg: ConsumeMessage,
    queue: string,
    options?: { headers?: Record<string, unknown> },
  ): Promise<void>;
  /** Calls `listener` each time the broker is back after it was unreachable. */
  onReconnect(listener: () => void): void;
}

export const TASK_BROKER = Symbol('cogman:task-broker');
