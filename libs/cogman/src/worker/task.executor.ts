import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import type { ConsumeMessage } from 'amqplib';
import { TaskPublisher } from '../broker/task.publisher';
import { TaskDispatcher } from '../dispatch/task.dispatcher';
import { RESOLVED_OPTIONS, type ResolvedCogmanOptions } from '../config';
import {
  TaskCancelledError,
  TaskTimeoutError,
  TaskUnrecoverableError,
  WorkerShutdownError,
} from '../errors';
import { CogmanMetrics } from '../metrics/cogman.metrics';
import { backoffDelay, DEFAULT_BACKOFF } from '../scheduler/backoff';
import { TaskLog } from '../store/task-log';
import {
  decodePayload,
  fromDelivery,
  isFinished,
  nextAttempt,
  taskInfo,
  type DeadLetterReason,
  type TaskEnvelope,
  type TaskPriority,
  type TaskStatus,
} from '../task';
import type { TaskAbort } from './task-abort';
import { TaskCancellation } from './task-cancellation';
import { TaskHandlerRegistry } from './task-handler.registry';

/** One message handed to the worker. */
export interface Delivery {
  msg: ConsumeMessage;
  queue: string;
  priority: TaskPriority;
  /**
   * Aborted (reason `WorkerShutdownError`) when shutdown gives up on this delivery, which is then
   * redelivered; the attempt's timeout and cancellation abort it too. It is the handler's signal.
   */
  abort: TaskAbort;
  /**
   * Frees the delivery's handler slot for the next delivery: called once the handler has
   * finished, before its outcome is recorded and the message acknowledged.
   */
  release?: () => void;
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
    private readonly cancellation: TaskCancellation,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedCogmanOptions,
    @Optional() @Inject(CogmanMetrics) private readonly metrics: CogmanMetrics | null = null,
  ) {}

  async execute(delivery: Delivery): Promise<DeliveryOutcome> {
    const decoded = fromDelivery(delivery.msg, delivery.priority);
    if (!decoded.ok) {
      return this.deadLetter(delivery, decoded.reason, decoded.detail, decoded.taskId);
    }
    const { task, foreign } = decoded;
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

    const settings = {
      retry: task.retry ?? handler.options.retry ?? 0,
      timeout: task.timeout ?? handler.options.timeout ?? this.options.taskTimeout,
      backoff: task.backoff ?? handler.options.backoff ?? DEFAULT_BACKOFF,
    };
    // One signal for the handler: shutdown, this attempt's timeout, or a cancellation.
    const { abort } = delivery;
    const untrack = this.cancellation.track(task.taskId, abort);
    try {
      // The record exists normally (the producer wrote it): the attempt is not sent again, unless
      // the record turns out to lack it (a message from elsewhere, an expired record).
      const started = await this.store.record(
        {
          taskId: task.taskId,
          status: 'in_progress',
          at: new Date(),
          task: foreign ? task : undefined,
          retry: settings.retry,
        },
        { deferrable: true },
      );
      // Usually the worker gets here before the producer's record (whose write waits for the
      // broker's confirm, which waits for this worker's ack). The producer's write will carry
      // the description; in case it never comes, the outcome carries it too, in the same write.
      const undescribed = started.described === false ? task : undefined;
      if (!started.applied && isFinished(started.previous)) {
        // Cancelled, or a redelivery of an attempt that finished (its ack was lost).
        this.logger.debug?.(`Task ${task.taskId} is already ${started.previous}; skipping it`);
        await this.describe(undescribed);
        return 'ack';
      }
      const info = taskInfo(task, settings.retry);
      const began = performance.now();
      const logger = this.taskLogger(task.name);
      const outcome = await runWithin(settings.timeout, abort, async () => {
        const instance = await handler.resolve(info);
        await instance.handle(payload, {
          task: info,
          get signal() {
            return abort.signal;
          },
          logger,
        });
      });
      const duration = Math.round((performance.now() - began) * 1000) / 1000;
      delivery.release?.();

      const reason: unknown = abort.aborted ? abort.reason : undefined;
      // Shutdown: leave the message to be redelivered. Cancelled: already recorded as such.
      if (reason instanceof WorkerShutdownError || reason instanceof TaskCancelledError) {
        await this.describe(undescribed);
        return reason instanceof WorkerShutdownError ? 'requeue' : 'ack';
      }
      if (outcome.ok) {
        await this.record(task, 'success', { duration, task: undescribed });
        this.metrics?.taskProcessed(task.name, task.priority, 'success', duration);
        return 'ack';
      }
      const error = reason instanceof TaskTimeoutError ? reason : outcome.error;
      const failError = errorText(error);
      if (task.attempt > settings.retry || error instanceof TaskUnrecoverableError) {
        await this.record(task, 'failed', { failError, duration, task: undescribed });
        this.metrics?.taskProcessed(task.name, task.priority, 'failed', duration);
        this.metrics?.taskFailed(task.name, task.priority);
        return 'ack';
      }
      // Publish (or schedule) the next attempt before recording this one as finished: if the
      // worker dies in between, the redelivered message runs again instead of the task being
      // lost. The next attempt is not created if this one was cancelled meanwhile.
      const next = nextAttempt(task);
      const wait = backoffDelay(settings.backoff, task.attempt, error);
      const guard = { unlessCancelled: task.taskId };
      if (wait > 0) await this.dispatcher.schedule(next, new Date(Date.now() + wait), guard);
      else await this.dispatcher.dispatch(next, guard);
      await this.record(task, 'retry', { failError, duration, task: undescribed });
      this.metrics?.taskProcessed(task.name, task.priority, 'retry', duration);
      this.metrics?.taskRetried(task.name, task.priority);
      return 'ack';
    } finally {
      untrack();
    }
  }

  /** Records an outcome; `fields.task` describes the attempt where its record lacks that. */
  private record(
    task: TaskEnvelope,
    status: TaskStatus,
    fields: { failError?: string; duration?: number; task?: TaskEnvelope } = {},
  ) {
    return this.store.record(
      { taskId: task.taskId, status, at: new Date(), ...fields },
      { deferrable: true },
    );
  }

  /** Adds the description to a record that lacks it, where no outcome will carry it. */
  private async describe(task: TaskEnvelope | undefined): Promise<void> {
    if (task) await this.record(task, 'in_progress', { task });
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
      await this.store.record(
        { taskId, status: 'failed', at: new Date(), task, failError },
        { deferrable: true },
      );
      if (task) this.metrics?.taskFailed(task.name, task.priority);
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

/**
 * Runs `work`, giving up when `abort` aborts or after `timeout` ms (which aborts it): a handler
 * that ignores its signal does not keep the worker's slot, and its late result is ignored.
 */
function runWithin(
  timeout: number,
  abort: TaskAbort,
  work: () => Promise<void>,
): Promise<{ ok: true } | { ok: false; error: unknown }> {
  return new Promise((resolve) => {
    // Cancelled (or shut down) before it started: the handler is not run.
    if (abort.aborted) return resolve({ ok: false, error: abort.reason });
    const timer = setTimeout(() => abort.abort(new TaskTimeoutError(timeout)), timeout);
    const stopListening = abort.onAbort((error) => finish({ ok: false, error }));
    // The first outcome counts; a later one (a handler finishing after its timeout) changes
    // nothing: clearing and resolving again are no-ops.
    function finish(outcome: { ok: true } | { ok: false; error: unknown }) {
      clearTimeout(timer);
      stopListening();
      resolve(outcome);
    }
    work().then(
      () => finish({ ok: true }),
      (error: unknown) => finish({ ok: false, error }),
    );
  });
}

export function errorText(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return typeof error === 'string' ? error : (JSON.stringify(error) ?? String(error));
}
