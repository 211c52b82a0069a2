import { Inject, Injectable, Optional } from '@nestjs/common';
import {
  CogmanInspector,
  type CogmanQueues,
  type CogmanServices,
  type CogmanWorkerReport,
} from '../inspector/cogman.inspector';
import {
  ArchiveNotConfiguredError,
  TaskInvalidError,
  TaskNotFoundError,
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
import {
  buildTask,
  envelopeOf,
  nextAttempt,
  isFinished,
  retryTaskId,
  type BuiltTask,
  type SendTaskOptions,
  type TaskRecord,
  type TaskPriority,
  type TaskScheduleDefinition,
  type TaskStatus,
} from '../task';
import { COGMAN_CLOCK, SYSTEM_CLOCK, type Clock } from '../util/clock';
import { TaskCancellation } from '../worker/task-cancellation';
import { QueuePauses, type CogmanPauses } from '../worker/queue-pauses';
import { UniqueTasks } from './unique-tasks';
import { TaskSchedules, type CogmanSchedule } from './task-schedules';
import { TaskDispatcher } from '../dispatch/task.dispatcher';

/** Sends tasks and reads, cancels and promotes them. Inject it anywhere. */
@Injectable()
export class CogmanClient {
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
  ) {}

  /**
   * Records the task, publishes it and resolves with its record once the broker has confirmed
   * the message (`queued`). A task with a `delay` or `runAt` in the future is recorded
   * `scheduled` and published when due. An invalid task is rejected with `TaskInvalidError`
   * before anything is written. A unique task (`unique`, or its handler's) whose key an
   * unfinished task holds is not sent: the answer is that task's record, `deduplicated: true`.
   */
  async sendTask<P = unknown>(options: SendTaskOptions<P>): Promise<TaskRecord<P>> {
    const built = buildTask(options, new Date(this.clock.now()));
    return this.sendBuilt(built, options);
  }

  /**
   * Sends many tasks at once, each with the guarantees of `sendTask`. All are validated first:
   * one invalid task rejects the call (`TaskInvalidError`, its field prefixed with the index)
   * before anything is sent. If some cannot be published, the call rejects with
   * `TasksNotSentError`, which lists them and holds the records of those that were sent.
   */
  async sendTasks<P = unknown>(tasks: SendTaskOptions<P>[]): Promise<TaskRecord<P>[]> {
    if (!Array.isArray(tasks)) throw new TaskInvalidError('tasks', 'must be an array');
    const built = tasks.map((options, index) => {
      try {
        return buildTask(options, new Date(this.clock.now()));
      } catch (error) {
        if (!(error instanceof TaskInvalidError)) throw error;
        throw new TaskInvalidError(`tasks[${index}].${error.field}`, error.reason, {
          cause: error,
        });
      }
    });
    const results = await Promise.allSettled(
      built.map((task, i) => this.sendBuilt(task, tasks[i])),
    );
    const records = results.map((result) =>
      result.status === 'fulfilled' ? result.value : undefined,
    );
    const failures = results.flatMap((result, index) =>
      result.status === 'rejected' ? [{ index, error: result.reason as unknown }] : [],
    );
    if (failures.length > 0) throw new TasksNotSentError(failures, records);
    return records as TaskRecord<P>[];
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

  /** The latest attempt of the task that `taskId` is an attempt of. */
  private async currentAttempt(taskId: string): Promise<TaskRecord> {
    const chain = await this.getAttempts(taskId);
    if (chain.length === 0) throw new TaskNotFoundError(taskId);
    return chain[chain.length - 1];
  }
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
