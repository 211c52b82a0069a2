import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import type { ConsumeMessage } from 'amqplib';
import { TASK_BROKER, type TaskBroker } from '../broker/task-broker';
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
import { TaskLog, type AttemptRecord } from '../store/task-log';
import { TaskLimits, type GroupSlot } from '../store/task-limits';
import type { AttemptState } from '../store/task-log.store';
import {
  decodePayload,
  fromDelivery,
  GROUP_HEADER,
  isFinished,
  nextAttempt,
  progressText,
  recordResult,
  taskInfo,
  type BackoffFunction,
  type BackoffPolicy,
  type DeadLetterReason,
  type TaskEnvelope,
  type TaskPriority,
  type TaskContext,
  type TaskEvent,
  type TaskStatus,
} from '../task';
import { COGMAN_CLOCK, SYSTEM_CLOCK, type Clock } from '../util/clock';
import { AttemptProgress } from './attempt-progress';
import { ProgressReport } from './progress-report';
import { traceAttempt } from './task-tracing';
import type { TaskAbort } from './task-abort';
import { TaskCancellation } from './task-cancellation';
import { TaskEvents } from './task-events';
import { TaskHandlerRegistry, type RegisteredTaskHandler } from './task-handler.registry';
import { WorkerDirectory } from './worker-directory';

/** Headers of a task handed back by workers that have no handler for it. */
export const UNHANDLED_HEADERS = {
  /** Times it was handed back so far. */
  handBacks: 'x-cogman-hand-backs',
  /** When a worker without its handler first received it (ms since the epoch). */
  since: 'x-cogman-unhandled-since',
} as const;

/** Pause before the first hand-back of a task without a handler here; it doubles each time. */
export const UNHANDLED_FIRST_DELAY = 250;
/** Longest pause between two hand-backs of a task without a handler here. */
export const UNHANDLED_MAX_DELAY = 5000;

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
/**
 * What to do with the message once `execute` returns: acknowledge it; hand it back (published
 * again, as a new delivery, then acknowledged: an attempt shutdown gave up on, which counts
 * toward no delivery limit); or requeue it (the broker redelivers it, counted).
 */
export type DeliveryOutcome = 'ack' | 'hand-back' | 'requeue';

/** A delivery that can be run: the attempt, its handler and what applies to it. */
interface Attempt {
  task: TaskEnvelope;
  /** Not published by Cogman (the Go library's way): no producer's record will come. */
  foreign: boolean;
  handler: RegisteredTaskHandler;
  payload: unknown;
  settings: { retry: number; timeout: number; backoff: BackoffPolicy | BackoffFunction };
}

/**
 * What became of one delivery: the one value every step after the handler works from (recording,
 * metrics, and the hooks that later attach to a task's outcome).
 */
export type TaskOutcome =
  /** The message cannot be run here: it goes to the dead-letter queue. */
  | {
      kind: 'dead-letter';
      reason: DeadLetterReason;
      detail: string;
      taskId?: string;
      task?: TaskEnvelope;
    }
  /**
   * No handler here: it goes back to its queue (after `wait` ms, with `headers` counting the
   * hand-backs) for a worker that has one.
   */
  | { kind: 'unhandled'; wait: number; headers: Record<string, number> }
  /** The attempt had finished already (cancelled, or a redelivery of one whose ack was lost). */
  | { kind: 'skipped'; previous: TaskStatus }
  | { kind: 'success'; duration: number; result?: unknown }
  | { kind: 'failed'; error: unknown; duration: number }
  /** Failed with retries left: `next` is published after `wait` ms. */
  | { kind: 'retry'; error: unknown; duration: number; next: TaskEnvelope; wait: number }
  /** Cancelled while it ran (the cancellation is recorded already). */
  | { kind: 'cancelled'; duration: number }
  /** Shutdown gave up on it: the message goes back to the queue. */
  | { kind: 'shutdown'; duration: number }
  /** Over its rate limit, or no slot of its group free: scheduled again, its attempt unchanged. */
  | { kind: 'deferred'; runAt: Date };

/**
 * Runs one delivery, as a sequence around one `TaskOutcome`: decode it (or dead-letter it), check
 * it (against the mirror of cancellations; a redelivery against its record too), run the handler
 * (its `in_progress` is recorded only if it runs past `progressAfter`), decide the outcome, record
 * it in one change (publishing the next attempt of a failed task with retries left first). A
 * first delivery costs no Redis round trip before its handler starts. The message is acknowledged
 * only after all of that, so a worker that dies midway leaves it to be redelivered.
 */
@Injectable()
export class TaskExecutor {
  private readonly logger = new Logger('Cogman:Worker');
  private readonly taskLoggers = new Map<string, Logger>();

  constructor(
    private readonly registry: TaskHandlerRegistry,
    private readonly dispatcher: TaskDispatcher,
    @Inject(TASK_BROKER) private readonly broker: TaskBroker,
    private readonly log: TaskLog,
    private readonly cancellation: TaskCancellation,
    private readonly progress: AttemptProgress,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedCogmanOptions,
    @Optional() @Inject(CogmanMetrics) private readonly metrics: CogmanMetrics | null = null,
    @Optional() @Inject(COGMAN_CLOCK) private readonly clock: Clock = SYSTEM_CLOCK,
    @Optional() @Inject(WorkerDirectory) private readonly directory: WorkerDirectory | null = null,
    @Optional() @Inject(TaskEvents) private readonly events: TaskEvents | null = null,
    @Optional() @Inject(TaskLimits) private readonly limits: TaskLimits | null = null,
  ) {}

  async execute(delivery: Delivery): Promise<DeliveryOutcome> {
    const decoded = this.decode(delivery);
    const attempt = 'handler' in decoded ? decoded : await this.unhandled(delivery, decoded);
    if ('kind' in attempt) return this.settle(delivery, attempt);
    const { task, foreign, settings } = attempt;
    // One signal for the handler: shutdown, this attempt's timeout, or a cancellation, which
    // aborts it from the moment it is tracked, here, in the same step as the check below.
    const untrack = this.cancellation.track(task.taskId, delivery.abort);
    try {
      const redelivered = delivery.msg.fields.redelivered === true;
      const cancelled = this.cancellation.isCancelled(task.taskId);
      if (cancelled === true) {
        const record = this.log.start(task, { foreign, retry: settings.retry });
        return await this.settle(
          delivery,
          { kind: 'skipped', previous: 'cancelled' },
          attempt,
          record,
        );
      }
      // A first delivery runs at once, with no read of its record; one the worker cannot vouch
      // for (a redelivery, or cancellations not known for sure) is checked against it first.
      let state: AttemptState | null = null;
      if (redelivered || cancelled === undefined) {
        // Counted by the record, on every queue type: a quorum queue's own x-delivery-count
        // also counts the returns of messages read ahead by a worker that died, which never
        // started, and would dead-letter the healthy neighbours of a poison message.
        state = await this.log.inspect(task.taskId, { redelivered });
        const outcome = this.check(task, state, redelivered);
        if (outcome) {
          const record = this.log.start(task, { foreign, retry: settings.retry, state });
          return await this.settle(delivery, outcome, attempt, record);
        }
      }
      const { rateLimit, groupConcurrency } = attempt.handler.options;
      const admitted = rateLimit || groupConcurrency ? await this.admit(attempt) : undefined;
      if (admitted instanceof Date) {
        return await this.settle(delivery, { kind: 'deferred', runAt: admitted }, attempt);
      }
      const record = this.log.start(task, { foreign, retry: settings.retry, state });
      let result: HandlerResult;
      try {
        result = await this.run(attempt, delivery, record);
      } finally {
        admitted?.release();
      }
      return await this.settle(
        delivery,
        this.decide(attempt, delivery.abort, result),
        attempt,
        record,
      );
    } finally {
      untrack();
    }
  }

  /**
   * What the record says of an attempt before it runs: skip one that finished (cancelled, or a
   * redelivery of one whose ack was lost); dead-letter one delivered `deliveryLimit` times.
   */
  private check(
    task: TaskEnvelope,
    state: AttemptState | null,
    redelivered: boolean,
  ): TaskOutcome | undefined {
    if (!state) return undefined;
    if (isFinished(state.status)) return { kind: 'skipped', previous: state.status! };
    const deliveries = state.redeliveries + 1;
    if (redelivered && deliveries > this.options.deliveryLimit) {
      return {
        kind: 'dead-letter',
        reason: 'delivery_limit',
        detail: `delivered ${deliveries} times, more than deliveryLimit (${this.options.deliveryLimit}): the earlier ones ended with no outcome (their worker stopped, or the message was requeued)`,
        taskId: task.taskId,
        task,
      };
    }
    return undefined;
  }

  /**
   * Whether the limits of the attempt's handler let it start now: nothing to hold, or the slot of
   * its group it then holds (release it once the handler is over); else when to try again.
   */
  private async admit(attempt: Attempt): Promise<GroupSlot | Date | undefined> {
    const { rateLimit, groupConcurrency } = attempt.handler.options;
    if (!this.limits) return undefined;
    const group = groupConcurrency ? attempt.task.headers[GROUP_HEADER] : undefined;
    const slot =
      group === undefined
        ? undefined
        : await this.limits.groupSlot(attempt.task, group, groupConcurrency!);
    // Every slot taken: try again in a moment (a slot frees when a task of the group ends).
    if (slot === null) return new Date(this.clock.now() + GROUP_RETRY * (1 + Math.random()));
    if (rateLimit) {
      const wait = await this.limits.reserve(attempt.task, rateLimit);
      if (wait > 0) {
        slot?.release();
        return new Date(this.clock.now() + wait);
      }
    }
    return slot;
  }

  /** The attempt a delivery carries, why it cannot be run, or the task when no handler is here. */
  private decode(delivery: Delivery): Attempt | TaskOutcome | { unhandled: TaskEnvelope } {
    const decoded = fromDelivery(delivery.msg, delivery.priority);
    if (!decoded.ok) {
      const { reason, detail, taskId } = decoded;
      return { kind: 'dead-letter', reason, detail, taskId };
    }
    const { task, foreign } = decoded;
    const handler = this.registry.get(task.name);
    if (!handler) return { unhandled: task };
    let payload: unknown;
    try {
      payload =
        handler.options.payload === 'json'
          ? JSON.parse(task.payload.body.toString('utf8'))
          : decodePayload(task.payload);
    } catch (error) {
      const detail = `the payload is not valid JSON: ${errorText(error)}`;
      return {
        kind: 'dead-letter',
        reason: 'undecodable_payload',
        detail,
        taskId: task.taskId,
        task,
      };
    }
    const settings = {
      retry: task.retry ?? handler.options.retry ?? 0,
      timeout: task.timeout ?? handler.options.timeout ?? this.options.taskTimeout,
      backoff: task.backoff ?? handler.options.backoff ?? DEFAULT_BACKOFF,
    };
    return { task, foreign, handler, payload, settings };
  }

  /**
   * A task whose handler this worker lacks (a worker of an older version in a rolling deploy, say)
   * goes back to its queue for one that has it, within `unknownTaskGracePeriod` of the first
   * worker that could not run it; past that, it is dead-lettered, saying whether a live worker
   * has its handler.
   */
  private async unhandled(
    delivery: Delivery,
    decoded: TaskOutcome | { unhandled: TaskEnvelope },
  ): Promise<TaskOutcome> {
    if (!('unhandled' in decoded)) return decoded;
    const task = decoded.unhandled;
    const headers: Record<string, unknown> = delivery.msg.properties.headers ?? {};
    const now = this.clock.now();
    const handBacks = counter(headers[UNHANDLED_HEADERS.handBacks]) ?? 0;
    const since = counter(headers[UNHANDLED_HEADERS.since]) ?? now;
    const grace = this.options.unknownTaskGracePeriod;
    if (now - since < grace) {
      return {
        kind: 'unhandled',
        wait: Math.min(UNHANDLED_FIRST_DELAY * 2 ** Math.min(handBacks, 10), UNHANDLED_MAX_DELAY),
        headers: { [UNHANDLED_HEADERS.handBacks]: handBacks + 1, [UNHANDLED_HEADERS.since]: since },
      };
    }
    const within =
      grace === 0
        ? ' (unknownTaskGracePeriod is 0)'
        : `, and none took it within unknownTaskGracePeriod (${grace} ms, handed back ${handBacks} time(s))`;
    const workers = await this.workersOf(task.name);
    const others =
      workers === undefined
        ? 'the worker reports could not be read'
        : workers.length === 0
          ? `no live worker has a handler for "${task.name}"`
          : `live worker(s) ${workers.join(', ')} have a handler for "${task.name}" but did not take it`;
    const detail = `no handler for task "${task.name}" in this worker${within}: ${others}`;
    return { kind: 'dead-letter', reason: 'unknown_task', detail, taskId: task.taskId, task };
  }

  /** Ids of the live workers whose reports name the task; undefined when they cannot be read. */
  private async workersOf(name: string): Promise<string[] | undefined> {
    if (!this.directory) return [];
    try {
      const reports = await this.directory.read();
      return reports.filter((report) => report.tasks.includes(name)).map((report) => report.id);
    } catch {
      return undefined;
    }
  }

  /** Runs the handler within the attempt's timeout; frees the delivery's slot when it is over. */
  private async run(
    attempt: Attempt,
    delivery: Delivery,
    record: AttemptRecord,
  ): Promise<HandlerResult> {
    const { task, handler, payload, settings } = attempt;
    const { abort } = delivery;
    const info = taskInfo(task, settings.retry);
    const logger = this.taskLogger(task.name);
    const unwatch = this.progress.watch(record);
    const began = performance.now();
    let report: ProgressReport | undefined;
    const context: TaskContext = {
      task: info,
      get signal() {
        return abort.signal;
      },
      logger,
      progress: (value) => {
        const text = progressText(value);
        if (this.events?.listening)
          this.events.emit({ type: 'progress', task: info, progress: value });
        report ??= new ProgressReport(record, this.options.progressInterval);
        report.report(text);
      },
    };
    if (this.events?.listening) this.events.emit({ type: 'started', task: info });
    const work = async () => {
      const resolved = handler.resolve(info);
      const instance = resolved instanceof Promise ? await resolved : resolved;
      return await instance.handle(payload, context);
    };
    const trace = traceAttempt(task, delivery.queue);
    const result = await runWithin(settings.timeout, abort, trace ? () => trace.run(work) : work);
    trace?.end(result);
    unwatch();
    report?.end();
    delivery.release?.();
    return { ...result, duration: Math.round((performance.now() - began) * 1000) / 1000 };
  }

  /** What the handler's result means for the task. */
  private decide(attempt: Attempt, abort: TaskAbort, result: HandlerResult): TaskOutcome {
    const { duration } = result;
    const reason: unknown = abort.aborted ? abort.reason : undefined;
    if (reason instanceof WorkerShutdownError) return { kind: 'shutdown', duration };
    if (reason instanceof TaskCancelledError) return { kind: 'cancelled', duration };
    if (result.ok) return { kind: 'success', duration, result: result.value };
    const { task, settings } = attempt;
    const error = reason instanceof TaskTimeoutError ? reason : result.error;
    if (task.attempt > settings.retry || error instanceof TaskUnrecoverableError) {
      return { kind: 'failed', error, duration };
    }
    const wait = backoffDelay(settings.backoff, task.attempt, error);
    return { kind: 'retry', error, duration, next: nextAttempt(task), wait };
  }

  /**
   * Records the outcome, tells the event listeners (if any) and says what becomes of the
   * message: the one place every delivery ends.
   */
  private settle(
    delivery: Delivery,
    outcome: TaskOutcome,
    attempt?: Attempt,
    record?: AttemptRecord,
  ): Promise<DeliveryOutcome> {
    const decision = this.apply(delivery, outcome, attempt, record);
    // Nobody listens: not even a promise more.
    if (!this.events?.listening) return decision;
    return decision.then((settled) => {
      const event = outcomeEvent(outcome, attempt);
      if (event && this.events) this.events.emit(event);
      return settled;
    });
  }

  /** Records the outcome and says what becomes of the message. */
  private async apply(
    delivery: Delivery,
    outcome: TaskOutcome,
    attempt?: Attempt,
    record?: AttemptRecord,
  ): Promise<DeliveryOutcome> {
    const task = attempt?.task;
    switch (outcome.kind) {
      case 'dead-letter':
        await this.deadLetter(delivery, outcome);
        return 'ack';
      case 'unhandled':
        // Aborted by a shutdown while it waited: the worker hands it back as it came.
        return (await this.handBack(delivery, outcome)) ? 'ack' : 'hand-back';
      case 'skipped':
        this.logger.debug?.(`Task ${task!.taskId} is already ${outcome.previous}; skipping it`);
        await record!.leave();
        return 'ack';
      case 'shutdown':
        await record!.leave();
        return 'hand-back';
      case 'cancelled':
        await record!.leave();
        return 'ack';
      case 'deferred': {
        const deferred = await this.limits!.defer(task!, outcome.runAt, attempt!.foreign).catch(
          (error: unknown) => {
            this.logger.warn(`Could not defer task ${task!.taskId}: ${String(error)}`);
            return 'unrecorded' as const;
          },
        );
        // Not recorded yet (its producer's queued is on its way): back to the queue, its turn kept.
        return deferred === 'unrecorded' ? 'hand-back' : 'ack';
      }
      case 'success':
        await record!.finish('success', {
          duration: outcome.duration,
          ...recordResult(outcome.result, this.options.resultMaxSize),
        });
        this.metrics?.taskProcessed(task!.name, task!.priority, 'success', outcome.duration);
        return 'ack';
      case 'failed':
        await record!.finish('failed', {
          failError: errorText(outcome.error),
          duration: outcome.duration,
        });
        this.metrics?.taskProcessed(task!.name, task!.priority, 'failed', outcome.duration);
        this.metrics?.taskFailed(task!.name, task!.priority);
        return 'ack';
      case 'retry': {
        // Publish (or schedule) the next attempt before recording this one as finished: if the
        // worker dies in between, the redelivered message runs again instead of the task being
        // lost. The next attempt is not created if this one was cancelled meanwhile.
        const { next, wait } = outcome;
        const guard = { unlessCancelled: task!.taskId };
        if (wait > 0)
          await this.dispatcher.schedule(next, new Date(this.clock.now() + wait), guard);
        else await this.dispatcher.dispatch(next, guard);
        await record!.finish('retry', {
          failError: errorText(outcome.error),
          duration: outcome.duration,
        });
        this.metrics?.taskProcessed(task!.name, task!.priority, 'retry', outcome.duration);
        this.metrics?.taskRetried(task!.name, task!.priority);
        return 'ack';
      }
    }
  }

  /**
   * Frees the slot, waits, then publishes the message again to its queue, counted; it is
   * acknowledged once that publish is confirmed. False when a shutdown cut the wait short.
   */
  private async handBack(
    delivery: Delivery,
    { wait, headers }: Extract<TaskOutcome, { kind: 'unhandled' }>,
  ): Promise<boolean> {
    delivery.release?.();
    const { abort } = delivery;
    if (!abort.aborted) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, wait);
        const stopListening = abort.onAbort(done);
        function done() {
          clearTimeout(timer);
          stopListening();
          resolve();
        }
      });
    }
    if (abort.aborted) return false;
    this.logger.debug?.(
      `No handler for a task from ${delivery.queue} here; handed back for another worker (${headers[UNHANDLED_HEADERS.handBacks]})`,
    );
    await this.broker.handBack(delivery.msg, delivery.queue, { headers });
    return true;
  }

  private async deadLetter(
    delivery: Delivery,
    { reason, detail, taskId, task }: Extract<TaskOutcome, { kind: 'dead-letter' }>,
  ): Promise<void> {
    this.logger.warn(`Dead-lettering a message from ${delivery.queue}: ${detail}`);
    await this.broker.deadLetter(delivery.msg, delivery.queue, reason, detail);
    if (taskId) {
      const failError = `dead-lettered (${reason}): ${detail}`;
      await this.log.record(
        { taskId, status: 'failed', at: new Date(), task, failError },
        { deferrable: true },
      );
      if (task) this.metrics?.taskFailed(task.name, task.priority);
    }
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

/** A non-negative integer header (AMQP may carry it as a number or, from other clients, text). */
function counter(value: unknown): number | undefined {
  const number = typeof value === 'string' && value !== '' ? Number(value) : value;
  return typeof number === 'number' && Number.isSafeInteger(number) && number >= 0
    ? number
    : undefined;
}

/** How long an attempt whose group has no free slot waits before it is tried again (ms, at least). */
const GROUP_RETRY = 500;

/** How the handler ended (and what it returned), and how long it ran (ms). */
type HandlerResult = Settled & { duration: number };

type Settled = { ok: true; value: unknown } | { ok: false; error: unknown };

/** The event an outcome means for listeners, if any (a skipped or handed-back one means none). */
function outcomeEvent(outcome: TaskOutcome, attempt: Attempt | undefined): TaskEvent | undefined {
  const task = attempt && taskInfo(attempt.task, attempt.settings.retry);
  switch (outcome.kind) {
    case 'dead-letter': {
      const envelope = outcome.task;
      return {
        type: 'dead-lettered',
        task: task ?? (envelope ? taskInfo(envelope, envelope.retry ?? 0) : null),
        taskId: outcome.taskId ?? null,
        reason: outcome.reason,
        detail: outcome.detail,
      };
    }
    case 'success':
      return { type: 'completed', task: task!, result: outcome.result, duration: outcome.duration };
    case 'failed':
      return { type: 'failed', task: task!, error: outcome.error, duration: outcome.duration };
    case 'retry':
      return {
        type: 'retrying',
        task: task!,
        error: outcome.error,
        duration: outcome.duration,
        nextTaskId: outcome.next.taskId,
        wait: outcome.wait,
      };
    case 'cancelled':
      return { type: 'cancelled', task: task!, duration: outcome.duration };
    default:
      return undefined;
  }
}

/**
 * Runs `work`, giving up when `abort` aborts or after `timeout` ms (which aborts it): a handler
 * that ignores its signal does not keep the worker's slot, and its late result is ignored.
 */
function runWithin(
  timeout: number,
  abort: TaskAbort,
  work: () => Promise<unknown>,
): Promise<Settled> {
  return new Promise((resolve) => {
    // Cancelled (or shut down) before it started: the handler is not run.
    if (abort.aborted) return resolve({ ok: false, error: abort.reason });
    const timer = setTimeout(() => abort.abort(new TaskTimeoutError(timeout)), timeout);
    const stopListening = abort.onAbort((error) => finish({ ok: false, error }));
    // The first outcome counts; a later one (a handler finishing after its timeout) changes
    // nothing: clearing and resolving again are no-ops.
    function finish(outcome: Settled) {
      clearTimeout(timer);
      stopListening();
      resolve(outcome);
    }
    work().then(
      (value) => finish({ ok: true, value }),
      (error: unknown) => finish({ ok: false, error }),
    );
  });
}

export function errorText(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return typeof error === 'string' ? error : (JSON.stringify(error) ?? String(error));
}
