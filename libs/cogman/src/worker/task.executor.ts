import { Injectable, Logger } from '@nestjs/common';
import type { ConsumeMessage } from 'amqplib';
import { TaskPublisher } from '../broker/task.publisher';
import { TaskDispatcher } from '../client/task.dispatcher';
import { TaskLog } from '../store/task-log';
import {
  decodePayload,
  fromDelivery,
  isFinished,
  retryTaskId,
  type DeadLetterReason,
  type TaskEnvelope,
  type TaskPriority,
  type TaskStatus,
} from '../task';
import { TaskHandlerRegistry } from './task-handler.registry';

/** One message handed to the worker. */
export interface Delivery {
  msg: ConsumeMessage;
  queue: string;
  priority: TaskPriority;
  /** Aborted when shutdown gives up on this delivery; it is then redelivered. */
  signal: AbortSignal;
}

/** What to do with the message once `execute` returns. */
export type DeliveryOutcome = 'ack' | 'requeue';

/**
 * Runs one delivery: checks it, records `in_progress`, runs the handler, records the outcome
 * (and publishes the next attempt of a failed task with retries left). The message is
 * acknowledged only after all of that, so a worker that dies midway leaves it to be redelivered.
 */
@Injectable()
export class TaskExecutor {
  private readonly logger = new Logger('Cogman:Worker');
  private readonly taskLoggers = new Map<string, Logger>();

  constructor(
    private readonly registry: TaskHandlerRegistry,
    private readonly dispatcher: TaskDispatcher,
    private readonly publisher: TaskPublisher,
    private readonly store: TaskLog,
  ) {}

  async execute(delivery: Delivery): Promise<DeliveryOutcome> {
    const decoded = fromDelivery(delivery.msg, delivery.priority);
    if (!decoded.ok) {
      return this.deadLetter(delivery, decoded.reason, decoded.detail, decoded.taskId);
    }
    const { task } = decoded;
    const handler = this.registry.get(task.name);
    if (!handler) {
      const detail = `no handler for task "${task.name}" in this worker`;
      return this.deadLetter(delivery, 'unknown_task', detail, task.taskId, task);
    }
    let payload: unknown;
    try {
      payload = decodePayload(task.payload);
    } catch (error) {
      const detail = `the payload is not valid JSON: ${errorText(error)}`;
      return this.deadLetter(delivery, 'undecodable_payload', detail, task.taskId, task);
    }

    const started = await this.record(task, 'in_progress');
    if (!started.applied && isFinished(started.previous)) {
      // A redelivery of an attempt that already finished (its ack was lost): nothing to do.
      this.logger.debug?.(`Task ${task.taskId} is already ${started.previous}; skipping it`);
      return 'ack';
    }

    // What the handler sees: the task without its encoded payload.
    const { payload: _encoded, ...info } = task;
    const began = performance.now();
    let failure: { error: unknown } | undefined;
    try {
      const instance = await handler.resolve(info);
      await instance.handle(payload, {
        task: info,
        signal: delivery.signal,
        logger: this.taskLogger(task.name),
      });
    } catch (error) {
      failure = { error };
    }
    const duration = Math.round((performance.now() - began) * 1000) / 1000;
    if (delivery.signal.aborted) return 'requeue';

    if (!failure) {
      await this.record(task, 'success', { duration });
      return 'ack';
    }
    const failError = errorText(failure.error);
    if (task.attempt <= task.retry) {
      // Publish the next attempt before recording this one as finished: if the worker dies in
      // between, the redelivered message runs again instead of the task being lost.
      await this.dispatcher.dispatch(nextAttempt(task));
      await this.record(task, 'retry', { failError, duration });
    } else {
      await this.record(task, 'failed', { failError, duration });
    }
    return 'ack';
  }

  private record(
    task: TaskEnvelope,
    status: TaskStatus,
    fields: { failError?: string; duration?: number } = {},
  ) {
    return this.store.record({ taskId: task.taskId, status, at: new Date(), task, ...fields });
  }

  private async deadLetter(
    delivery: Delivery,
    reason: DeadLetterReason,
    detail: string,
    taskId?: string,
    task?: TaskEnvelope,
  ): Promise<DeliveryOutcome> {
    this.logger.warn(`Dead-lettering a message from ${delivery.queue}: ${detail}`);
    await this.publisher.deadLetter(delivery.msg, delivery.queue, reason, detail);
    if (taskId) {
      const failError = `dead-lettered (${reason}): ${detail}`;
      await this.store.record({ taskId, status: 'failed', at: new Date(), task, failError });
    }
    return 'ack';
  }

  private taskLogger(name: string): Logger {
    let logger = this.taskLoggers.get(name);
    if (!logger) {
      logger = new Logger(`Cogman:${name}`);
      this.taskLoggers.set(name, logger);
    }
    return logger;
  }
}

/** The attempt after `task`: same task, next attempt number, an id derived from both. */
export function nextAttempt(task: TaskEnvelope): TaskEnvelope {
  const attempt = task.attempt + 1;
  return {
    ...task,
    taskId: retryTaskId(task.originalTaskId, attempt),
    attempt,
    createdAt: new Date(),
  };
}

export function errorText(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return typeof error === 'string' ? error : (JSON.stringify(error) ?? String(error));
}
