import { Inject, Injectable, Optional } from '@nestjs/common';
import {
  CogmanInspector,
  type CogmanQueues,
  type CogmanServices,
  type CogmanWorkerReport,
} from '../inspector/cogman.inspector';
import {
  ArchiveNotConfiguredError,
  ClientClosedError,
  TaskCancelledError,
  TaskFailedError,
  TaskInvalidError,
  TaskNotFoundError,
  TaskWaitTimeoutError,
  TasksNotSentError,
  TaskStatusConflictError,
} from '../errors';
import { CogmanMetrics } from '../metrics/cogman.metrics';
import { TaskScheduler } from '../scheduler/task.scheduler';
import {
  TASK_ARCHIVE,
  type ArchiveReads,
  type TaskCountBucket,
  type TaskCountQuery,
  type TaskListPage,
  type TaskListQuery,
} from '../store/task-archive';
import { TaskLog } from '../store/task-log';
import { TaskResultWatcher } from '../store/task-result.watcher';
import { TaskLimits } from '../store/task-limits';
import { TaskHandlerRegistry } from '../worker/task-handler.registry';
import {
  buildTask,
  envelopeOf,
  nextAttempt,
  isFinished,
  retryTaskId,
  type BuildTaskLimits,
  type BuiltTask,
  type SendTaskOptions,
  type TaskName,
  type TaskPayloadOf,
  type TypedSendTaskOptions,
  type TaskRecord,
  type TaskPriority,
  type TaskScheduleDefinition,
  type TaskStatus,
} from '../task';
import { COGMAN_CLOCK, SYSTEM_CLOCK, type Clock } from '../util/clock';
import { activeTraceHeaders, TRACEPARENT } from '../util/trace-context';
import { TaskCancellation } from '../worker/task-cancellation';
import { QueuePauses, type CogmanPauses } from '../worker/queue-pauses';
import { UniqueTasks } from './unique-tasks';
import { TaskSchedules, type CogmanSchedule } from './task-schedules';
import { TaskDispatcher } from '../dispatch/task.dispatcher';
import { WorkerDirectory } from '../worker/worker-directory';
import { RESOLVED_OPTIONS, type ResolvedCogmanOptions } from '../config';

/** How long `waitForResult` waits, and what ends the wait early. */
export interface WaitForResultOptions {
  /** Give up after this many milliseconds (`TaskWaitTimeoutError`). Default: no limit. */
  timeout?: number;
  /** Give up when this signal aborts (rejects with its reason). */
  signal?: AbortSignal;
}

/** The limits of one task's handler, as Redis holds them now (see `CogmanClient.limits`). */
export interface CogmanTaskLimits {
  name: string;
  /** `started`: starts within the last `duration` ms; `waiting`: attempts given a later turn. */
  rateLimit?: { max: number; duration: number; started: number; waiting: number };
  /** The groups with tasks running now, and how many each. */
  groupConcurrency?: { slots: number; groups: { group: string; running: number }[] };
}

/** Sends tasks and reads, cancels and promotes them. Inject it anywhere. */
@Injectable()
export class CogmanClient {
  private readonly buildLimits: BuildTaskLimits;

  constructor(
    private readonly dispatcher: TaskDispatcher,
    private readonly log: TaskLog,
    private readonly scheduler: TaskScheduler,
    private readonly cancellation: TaskCancellation,
    private readonly inspector: CogmanInspector,
    @Optional() @Inject(TASK_ARCHIVE) private readonly archive: ArchiveReads | null = null,
    @Optional() @Inject(CogmanMetrics) private readonly metrics: CogmanMetrics | null = null,
    @Optional() @Inject(COGMAN_CLOCK) private readonly clock: Clock = SYSTEM_CLOCK,
    @Optional() @Inject(QueuePauses) private readonly queuePauses: QueuePauses | null = null,
    @Optional() @Inject(UniqueTasks) private readonly unique: UniqueTasks | null = null,
    @Optional() @Inject(TaskSchedules) private readonly schedules: TaskSchedules | null = null,
    @Optional() @Inject(WorkerDirectory) private readonly directory: WorkerDirectory | null = null,
    @Optional()
    @Inject(RESOLVED_OPTIONS)
    options: ResolvedCogmanOptions | null = null,
    @Optional()
    @Inject(TaskResultWatcher)
    private readonly results: TaskResultWatcher | null = null,
    @Optional() @Inject(TaskLimits) private readonly taskLimits: TaskLimits | null = null,
    @Optional()
    @Inject(TaskHandlerRegistry)
    private readonly handlers: TaskHandlerRegistry | null = null,
  ) {
    this.buildLimits = { maxPayloadSize: options?.maxPayloadSize };
  }

  /**
   * Records the task, publishes it and resolves with its record once the broker has confirmed
   * the message (`queued`). A task with a `delay` or `runAt` in the future is recorded
   * `scheduled` and published when due. An invalid task is rejected with `TaskInvalidError`
   * before anything is written. A unique task (`unique`, or its handler's) whose key an
   * unfinished task holds is not sent: the answer is that task's record, `deduplicated: true`.
   */
  async sendTask<P = unknown, N extends TaskName = TaskName>(
    options: TypedSendTaskOptions<N, P>,
  ): Promise<TaskRecord<TaskPayloadOf<N, P>>> {
    const built = buildTask(traced(options), new Date(this.clock.now()), this.buildLimits);
    return this.sendBuilt<TaskPayloadOf<N, P>>(built, options);
  }

  /**
   * Sends many tasks at once, each with the guarantees of `sendTask`. All are validated first:
   * one invalid task rejects the call (`TaskInvalidError`, its field prefixed with the index)
   * before anything is sent. If some cannot be published, the call rejects with
   * `TasksNotSentError`, which lists them and holds the records of those that were sent.
   */
  async sendTasks<P = unknown, N extends TaskName = TaskName>(
    tasks: TypedSendTaskOptions<N, P>[],
  ): Promise<TaskRecord<TaskPayloadOf<N, P>>[]> {
    if (!Array.isArray(tasks)) throw new TaskInvalidError('tasks', 'must be an array');
    const built = tasks.map((options, index) => {
      try {
        return buildTask(traced(options), new Date(this.clock.now()), this.buildLimits);
      } catch (error) {
        if (!(error instanceof TaskInvalidError)) throw error;
        throw new TaskInvalidError(`tasks[${index}].${error.field}`, error.reason, {
          cause: error,
        });
      }
    });
    const results = await Promise.allSettled(
      built.map((task, i) =>
        this.sendBuilt<TaskPayloadOf<N, P>>(task, tasks[i] as SendTaskOptions<TaskPayloadOf<N, P>>),
      ),
    );
    const records = results.map((result) =>
      result.status === 'fulfilled' ? result.value : undefined,
    );
    const failures = results.flatMap((result, index) =>
      result.status === 'rejected' ? [{ index, error: result.reason as unknown }] : [],
    );
    if (failures.length > 0) throw new TasksNotSentError(failures, records);
    return records as TaskRecord<TaskPayloadOf<N, P>>[];
  }

  /**
   * Sends a task (as `sendTask`), then waits for its result (as `waitForResult`): resolves with
   * the record of its successful attempt, whose `result` is what the handler returned.
   */
  async sendAndWait<P = unknown>(
    options: SendTaskOptions<P>,
    wait: WaitForResultOptions = {},
  ): Promise<TaskRecord<P>> {
    const task = await this.sendTask(options);
    return this.waitForResult<P>(task.taskId, wait);
  }

  /**
   * Waits until the task finishes, following its retries: resolves with the record of the
   * attempt that succeeded (`result` holds what the handler returned); rejects with
   * `TaskFailedError` when its last attempt failed, `TaskCancelledError` when it was cancelled,
   * `TaskWaitTimeoutError` after `timeout` ms, the signal's reason when `signal` aborts, and
   * `TaskNotFoundError` for an unknown id. Given the id of any attempt. No polling: the worker
   * that records the outcome of an attempt someone waits for publishes it, and only then.
   */
  async waitForResult<P = unknown>(
    taskId: string,
    { timeout, signal }: WaitForResultOptions = {},
  ): Promise<TaskRecord<P>> {
    if (timeout !== undefined && (!Number.isFinite(timeout) || timeout < 0)) {
      throw new TaskInvalidError('timeout', 'must be a number of milliseconds, 0 or more');
    }
    signal?.throwIfAborted();
    const ended = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const onAbort = () => ended.abort(signal!.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    if (timeout !== undefined) {
      timer = setTimeout(() => ended.abort(new TaskWaitTimeoutError(taskId, timeout)), timeout);
    }
    try {
      return (await this.follow(taskId, ended.signal)) as TaskRecord<P>;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      ended.abort();
    }
  }

  /** The record of one attempt, or null when it is unknown (or expired from the log). */
  getTask<P = unknown>(taskId: string): Promise<TaskRecord<P> | null> {
    return this.log.get(taskId) as Promise<TaskRecord<P> | null>;
  }

  /**
   * Every attempt of a task, first to last, given the id of any of them (retries have ids
   * derived from the first attempt's, so the chain is found without a search).
   */
  async getAttempts<P = unknown>(taskId: string): Promise<TaskRecord<P>[]> {
    const some = await this.log.get(taskId);
    if (!some) return [];
    const first = some.attempt === 1 ? some : await this.log.get(some.originalTaskId);
    if (!first) return [some as TaskRecord<P>];
    const chain = [first];
    for (let attempt = 2; ; attempt++) {
      const next = await this.log.get(retryTaskId(first.taskId, attempt));
      if (!next) break;
      chain.push(next);
    }
    return chain as TaskRecord<P>[];
  }

  /**
   * Cancels a task that has not finished: scheduled or waiting in a queue (a worker that
   * receives it skips it), or running (its handler's signal is aborted). Given the id of any
   * attempt, it cancels the task's current attempt. A finished task is refused with
   * `TaskStatusConflictError`; an unknown one with `TaskNotFoundError`.
   */
  async cancelTask<P = unknown>(taskId: string): Promise<TaskRecord<P>> {
    let current = await this.currentAttempt(taskId);
    for (;;) {
      const result = await this.log.record({
        taskId: current.taskId,
        status: 'cancelled',
        at: new Date(),
      });
      if (!result.applied) {
        throw new TaskStatusConflictError(
          current.taskId,
          result.previous ?? current.status,
          'cancel',
          'it has already finished',
        );
      }
      // Workers learn of it from the cancelled set and its channel; a worker here, at once.
      this.cancellation.notify(current.taskId);
      // A worker may have created the next attempt just before this one was cancelled.
      const next = await this.log.get(retryTaskId(current.originalTaskId, current.attempt + 1));
      if (!next || isFinished(next.status)) break;
      current = next;
    }
    return (await this.log.get(current.taskId)) as TaskRecord<P>;
  }

  /**
   * Publishes a scheduled task (or a retry waiting for its backoff) now instead of when due.
   * Any other status is refused with `TaskStatusConflictError`.
   */
  async runNow<P = unknown>(taskId: string): Promise<TaskRecord<P>> {
    const current = await this.currentAttempt(taskId);
    if (current.status !== 'scheduled') {
      throw new TaskStatusConflictError(
        current.taskId,
        current.status,
        'run now',
        'only a scheduled task can be run now',
      );
    }
    await this.scheduler.runNow(current.taskId);
    return (await this.log.get(current.taskId)) as TaskRecord<P>;
  }

  /**
   * Tries a failed task once more: a new attempt (the next attempt number, the same
   * `originalTaskId`, one more retry allowed) is published now, through the path every attempt
   * takes. Given the id of any attempt; resolves with the new attempt's record. A task whose
   * current attempt is not `failed` is refused with `TaskStatusConflictError` (as is a second
   * retry of the same failure while the first is being sent); an unknown one with
   * `TaskNotFoundError`.
   */
  async retryTask<P = unknown>(taskId: string): Promise<TaskRecord<P>> {
    const current = await this.currentAttempt(taskId);
    if (current.status !== 'failed') {
      throw new TaskStatusConflictError(
        current.taskId,
        current.status,
        'retry',
        'only a failed task can be retried',
      );
    }
    // The attempt as it was sent (settings included) is in Redis; once it has expired from
    // there, the archived record gives it back without its timeout and backoff.
    const sent = (await this.log.load(current.taskId))?.task ?? envelopeOf(current);
    const next = nextAttempt({ ...sent, retry: Math.max(current.retry, current.attempt) });
    // Created here first, so that of two concurrent retries of one failure only one publishes.
    const created = await this.log.record({
      taskId: next.taskId,
      status: 'initiated',
      at: next.createdAt,
      task: next,
    });
    if (!created.applied) {
      throw new TaskStatusConflictError(
        current.taskId,
        current.status,
        'retry',
        `it has been retried already (attempt ${next.attempt})`,
      );
    }
    const status = await this.dispatcher.dispatch(next, { recorded: true });
    this.metrics?.taskRetried(next.name, next.priority);
    const record = await this.log.get(next.taskId);
    return (record ?? sentRecord({ task: next }, current.payload, status)) as TaskRecord<P>;
  }

  /**
   * A page of tasks (every attempt is one) matching the filters, sorted by creation, with the
   * number of matches and the cursor of the next page. Needs the MongoDB archive (`mongoUri`):
   * without it, rejects with `ArchiveNotConfiguredError` (the Redis log has no index to list from).
   */
  listTasks(query: TaskListQuery): Promise<TaskListPage> {
    if (!this.archive) return Promise.reject(new ArchiveNotConfiguredError('list tasks'));
    return this.archive.list(query);
  }

  /**
   * Counts per status of the tasks created in `[from, to)`, in `buckets` equal intervals (for a
   * chart). Needs the MongoDB archive, like `listTasks`.
   */
  countTasks(query: TaskCountQuery): Promise<TaskCountBucket[]> {
    if (!this.archive) return Promise.reject(new ArchiveNotConfiguredError('count tasks'));
    return this.archive.count(query);
  }

  /**
   * The rate limits and group concurrency of the handlers registered in this process, as Redis
   * holds them now: for each rate limit, the starts within its window and the attempts waiting
   * for a turn; for each group limit, the groups with tasks running. Handlers without limits are
   * left out.
   */
  async limits(): Promise<CogmanTaskLimits[]> {
    const limits = this.taskLimits;
    if (!limits || !this.handlers) return [];
    const out: CogmanTaskLimits[] = [];
    for (const name of this.handlers.names()) {
      const { rateLimit, groupConcurrency } = this.handlers.get(name)!.options;
      if (!rateLimit && !groupConcurrency) continue;
      const entry: CogmanTaskLimits = { name };
      if (rateLimit) {
        const state = await limits.rateState(name, rateLimit.duration);
        entry.rateLimit = {
          ...rateLimit,
          started: state?.started ?? 0,
          waiting: state?.waiting ?? 0,
        };
      }
      if (groupConcurrency) {
        entry.groupConcurrency = {
          slots: groupConcurrency,
          groups: await limits.groupStates(name),
        };
      }
      out.push(entry);
    }
    return out;
  }

  /** What Cogman is connected to and runs in this process. */
  services(): CogmanServices {
    return this.inspector.services();
  }

  /**
   * Per queue: ready messages and consumers (from the broker), and unacknowledged messages
   * (held by Cogman workers, as they reported within the last seconds).
   */
  queues(): Promise<CogmanQueues> {
    return this.inspector.queues();
  }

  /**
   * The worker processes of the namespace (host, pid, concurrency, running tasks), as each last
   * reported itself in Redis; those that stopped reporting are left out. Rejects while Redis is
   * unreachable.
   */
  workers(): Promise<CogmanWorkerReport[]> {
    return this.inspector.workers();
  }

  /**
   * Pauses the processing of a priority (or of both, the whole namespace, when none is given) in
   * every worker process of the namespace: within about a second they start no new task of it,
   * running ones finish, and the queues keep accepting tasks. The state is kept in Redis, so a
   * worker that starts while paused stays paused, until `resume`. Resolves with the new state.
   */
  async pause(priority?: TaskPriority): Promise<CogmanPauses> {
    return this.pausesOrFail().pause(priority);
  }

  /** Resumes a paused priority (or both when none is given) in every worker process. */
  async resume(priority?: TaskPriority): Promise<CogmanPauses> {
    return this.pausesOrFail().resume(priority);
  }

  /** Whether each priority of the namespace is paused, and since when (read from Redis). */
  async pauses(): Promise<CogmanPauses> {
    return this.pausesOrFail().state();
  }

  /**
   * Creates or replaces (same `id`) a recurring schedule: a task sent at each tick of a cron
   * expression or an interval (see `TaskScheduleDefinition`). Each tick sends exactly one task,
   * however many processes run the scheduler. An invalid schedule is refused with
   * `TaskInvalidError`. A changed schedule starts from its next tick after now.
   */
  async upsertSchedule(definition: TaskScheduleDefinition): Promise<CogmanSchedule> {
    return this.schedulesOrFail().upsert(definition);
  }

  /** Removes a schedule (tasks it sent are not touched); `ScheduleNotFoundError` if unknown. */
  async removeSchedule(id: string): Promise<void> {
    return this.schedulesOrFail().remove(id);
  }

  /** One schedule with its next run and last run, or null. */
  async getSchedule(id: string): Promise<CogmanSchedule | null> {
    return this.schedulesOrFail().get(id);
  }

  /** Every schedule of the namespace, by id, with its next run and last run. */
  async listSchedules(): Promise<CogmanSchedule[]> {
    return this.schedulesOrFail().list();
  }

  /** Pauses a schedule: its ticks send nothing until it is resumed. */
  async pauseSchedule(id: string): Promise<CogmanSchedule> {
    return this.schedulesOrFail().pause(id);
  }

  /** Resumes a paused schedule from its next tick after now (the ticks missed are not sent). */
  async resumeSchedule(id: string): Promise<CogmanSchedule> {
    return this.schedulesOrFail().resume(id);
  }

  /** Sends a schedule's task now, beside its ticks; resolves with the task's record. */
  async triggerSchedule<P = unknown>(id: string): Promise<TaskRecord<P>> {
    const taskId = await this.schedulesOrFail().trigger(id);
    const record = await this.log.get(taskId);
    if (!record) throw new TaskNotFoundError(taskId);
    return record as TaskRecord<P>;
  }

  private schedulesOrFail(): TaskSchedules {
    if (!this.schedules) throw new Error('Schedules need CogmanModule (no TaskSchedules provider)');
    return this.schedules;
  }

  private pausesOrFail(): QueuePauses {
    if (!this.queuePauses) throw new Error('Pausing needs CogmanModule (no QueuePauses provider)');
    return this.queuePauses;
  }

  /** Sends a built task; a unique one only if its key is free (else the holder's record). */
  private async sendBuilt<P>(
    built: BuiltTask,
    options: SendTaskOptions<P>,
  ): Promise<TaskRecord<P>> {
    const payload = options.payload as P;
    const unique = this.unique?.settingOf(options);
    if (!this.unique || !unique) return sentRecord(built, payload, await this.send(built));
    const result = await this.unique.send(built, unique, () =>
      this.send(built, { recordFirst: true }),
    );
    if ('existing' in result) return { ...(result.existing as TaskRecord<P>), deduplicated: true };
    return { ...sentRecord(built, payload, result.status), deduplicated: false };
  }

  /**
   * `recordFirst`: record the task (`initiated`) before publishing it, so that a sender of the
   * same unique key finds its record at once.
   */
  private async send(
    { task, runAt }: BuiltTask,
    { recordFirst = false }: { recordFirst?: boolean } = {},
  ): Promise<TaskStatus> {
    this.directory?.checkServed(task.name);
    let status: TaskStatus;
    if (runAt) status = await this.dispatcher.schedule(task, runAt);
    else if (!recordFirst) status = await this.dispatcher.dispatch(task);
    else {
      await this.log.record({ taskId: task.taskId, status: 'initiated', at: task.createdAt, task });
      status = await this.dispatcher.dispatch(task, { recorded: true });
    }
    this.metrics?.taskSent(task.name, task.priority);
    return status;
  }

  /** Follows a task from `taskId` on, attempt by attempt, until it finishes or `ended` aborts. */
  private async follow(taskId: string, ended: AbortSignal): Promise<TaskRecord> {
    if (!this.results) throw new Error('waitForResult needs the task result watcher');
    const stopped = new Promise<never>((_, reject) => {
      const end = () => reject(ended.reason as Error);
      if (ended.aborted) end();
      else ended.addEventListener('abort', end, { once: true });
    });
    stopped.catch(() => {});
    let id = taskId;
    for (let first = true; ; first = false) {
      let wake!: (closed?: boolean) => void;
      let woken = new Promise<boolean | undefined>((resolve) => (wake = resolve));
      const watching = this.results.watch(id, (closed) => wake(closed));
      const watch = await Promise.race([watching, stopped]).catch((error: unknown) => {
        // Ended while the record was being flagged: the watch, once made, is stopped too.
        watching.then(
          (made) => made.stop(),
          () => {},
        );
        throw error;
      });
      try {
        for (;;) {
          // A wake during the read below is kept for the next wait.
          const current = woken;
          const record = await Promise.race([this.log.get(id), stopped]);
          if (!record) {
            // Not recorded yet: the next attempt of a retried task, being published.
            if (first && watch.status === null) throw new TaskNotFoundError(taskId);
          } else if (record.status === 'success') return record;
          else if (record.status === 'failed') {
            throw new TaskFailedError(record.taskId, record.failError, record);
          } else if (record.status === 'cancelled') throw new TaskCancelledError(record.taskId);
          else if (record.status === 'retry') {
            id = retryTaskId(record.originalTaskId, record.attempt + 1);
            break;
          }
          if (await Promise.race([current, stopped])) throw new ClientClosedError();
          woken = new Promise((resolve) => (wake = resolve));
        }
      } finally {
        watch.stop();
      }
    }
  }

  /** The latest attempt of the task that `taskId` is an attempt of. */
  private async currentAttempt(taskId: string): Promise<TaskRecord> {
    const chain = await this.getAttempts(taskId);
    if (chain.length === 0) throw new TaskNotFoundError(taskId);
    return chain[chain.length - 1];
  }
}

/**
 * The task with the trace context of the span active now (OpenTelemetry installed), unless it
 * carries a `traceparent` of its own: its workers continue that trace.
 */
function traced<P>(options: SendTaskOptions<P>): SendTaskOptions<P> {
  // Not an object: refused by the validation that follows.
  if (typeof options !== 'object' || options === null) return options;
  const given: unknown = options.headers;
  // A task with its own trace context, or with headers that are not an object (refused later).
  if (given !== undefined && (typeof given !== 'object' || given === null || Array.isArray(given)))
    return options;
  if (options.headers?.[TRACEPARENT] !== undefined) return options;
  const headers = activeTraceHeaders();
  return headers ? { ...options, headers: { ...headers, ...options.headers } } : options;
}

function sentRecord<P>({ task, runAt }: BuiltTask, payload: P, status: TaskStatus): TaskRecord<P> {
  return {
    taskId: task.taskId,
    name: task.name,
    originalTaskId: task.originalTaskId,
    primaryKey: task.primaryKey,
    retry: task.retry ?? 0,
    attempt: task.attempt,
    priority: task.priority,
    headers: task.headers,
    createdAt: task.createdAt,
    payload,
    status,
    failError: null,
    duration: null,
    startedAt: null,
    runAt: runAt ?? null,
    updatedAt: new Date(),
  };
}
