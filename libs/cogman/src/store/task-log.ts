import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { RESOLVED_OPTIONS, type ResolvedCogmanOptions } from '../config';
import { StoreUnavailableError } from '../errors';
import type { TaskEnvelope, TaskRecord, TaskStatus } from '../task';
import { within } from '../util/within';
import { TASK_ARCHIVE, type ArchiveReads, type ArchiveWrites } from './task-archive';
import {
  TASK_LOG_STORE,
  type AttemptState,
  type StoredTask,
  type TaskLogStore,
  type TaskStatusChange,
  type TaskStatusResult,
} from './task-log.store';

/** Most status writes held in memory while Redis is unreachable. */
export const MAX_DEFERRED_WRITES = 100_000;

export interface RecordOptions {
  /** Also wait until the archive has the change. */
  durable?: boolean;
  /**
   * On the task path: if Redis is unreachable (or slow past the wait), carry on without the
   * result; the write lands when Redis returns, in order, and the change counts as applied.
   */
  deferrable?: boolean;
}

/** Fields of a worker's outcome besides its status. */
export interface OutcomeFields {
  failError?: string;
  duration?: number;
  result?: TaskStatusChange['result'];
  resultError?: string;
  progress?: string;
}

/**
 * Where every status change goes: the Redis log (it decides what happens next) and, when
 * configured, the MongoDB archive (batched in the background, unless `durable`). While Redis is
 * unreachable, writes on the task path wait in memory instead of stopping tasks.
 *
 * Who writes an attempt's description (its name, payload, headers and settings): whoever records
 * the attempt first, once. A new task's first record is the producer's `queued`, written after
 * the broker confirms the message, or its `initiated`/`scheduled` when it is not published at
 * once. A worker's outcome carries the description only where the worker knows the record lacks
 * it: a message from a producer that writes no record (the Go library), or a redelivery whose
 * record it read and found without it. The reason: the description (the payload above all) is
 * most of a change's bytes, and the worker reads nothing before a first delivery, so writing it
 * once per attempt keeps the log's cost per task at two small changes. (A producer that dies
 * between the broker's confirm and its record leaves a record with the outcome and without the
 * description.) `queued` and `start` below are where this is decided; the dispatcher and the
 * worker call them rather than deciding it themselves.
 */
@Injectable()
export class TaskLog {
  private readonly logger = new Logger('Cogman:Redis');
  private readonly wait: number;
  /** Writes on the task path that Redis has not answered yet. */
  private readonly waiting = new Set<Promise<unknown>>();
  private dropped = 0;
  /**
   * Writes waiting for Redis's answer, by age: at each beat of a clock shared by all of them (one
   * timer in all), those already waiting at the last beat are given up on. Nothing else holds on
   * to a write, so one answered at once is soon garbage.
   */
  private watched = new Set<() => void>();
  private watchedBefore = new Set<() => void>();
  private clock?: NodeJS.Timeout;

  constructor(
    @Inject(TASK_LOG_STORE) private readonly store: TaskLogStore,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedCogmanOptions,
    @Optional()
    @Inject(TASK_ARCHIVE)
    private readonly archive: (ArchiveWrites & ArchiveReads) | null = null,
  ) {
    this.wait = Math.min(1000, Math.ceil(options.requestTimeout / 2));
  }

  get archived(): boolean {
    return this.archive !== null;
  }

  /** Status writes waiting for Redis. */
  get pendingWrites(): number {
    return this.waiting.size;
  }

  /** Waits up to `timeout` ms for the writes still waiting for Redis; says how many did not land. */
  async flush(timeout: number): Promise<number> {
    if (this.waiting.size > 0) {
      await within(Promise.allSettled([...this.waiting]), timeout, () => undefined);
    }
    if (this.waiting.size > 0) {
      this.logger.warn(`${this.waiting.size} status writes did not reach Redis before shutdown`);
    }
    return this.waiting.size;
  }

  /** Records a change in Redis, and in the archive if it applied there (or describes the task). */
  record(change: TaskStatusChange, options: RecordOptions = {}): Promise<TaskStatusResult> {
    if (!options.deferrable) {
      return this.store
        .record(change)
        .then((result) => this.archiveIfApplied(change, result, options));
    }
    if (!this.store.available && this.waiting.size >= MAX_DEFERRED_WRITES) {
      return this.drop(change, options);
    }
    const writing = this.store.record(change);
    // Waits at most one to two beats when Redis is there but does not answer; not at all when
    // it is known to be unreachable.
    if (!this.store.available) return this.defer(change, writing, options);
    return this.watch(writing).then((settled) =>
      settled
        ? this.archiveIfApplied(change, settled, options)
        : this.defer(change, writing, options),
    );
  }

  /** Stops the clock of waiting writes; those still waiting are given up on. */
  close(): void {
    clearInterval(this.clock);
    this.clock = undefined;
    this.giveUp(this.watchedBefore);
    this.giveUp(this.watched);
  }

  /**
   * Records that an attempt was published and confirmed. `described`: the caller has recorded
   * the attempt with its description already (`initiated` or `scheduled`).
   */
  queued(task: TaskEnvelope, { described }: { described: boolean }): Promise<TaskStatusResult> {
    return this.record(
      { taskId: task.taskId, status: 'queued', at: new Date(), task: described ? undefined : task },
      { deferrable: true },
    );
  }

  /**
   * The record of an attempt a worker starts, written only with the attempt's outcome (or its
   * late `in_progress`): nothing is written or read before the handler runs. The description goes
   * with those changes for a `foreign` message (no producer's record will come), or where `state`
   * (read first for a redelivery) says the record lacks it.
   */
  start(
    task: TaskEnvelope,
    { foreign, retry, state }: { foreign: boolean; retry: number; state?: AttemptState | null },
  ): AttemptRecord {
    const undescribed = foreign || (state !== undefined && state !== null && !state.described);
    return new AttemptRecord(this, task, retry, new Date(), undescribed);
  }

  /**
   * What a worker reads of an attempt it cannot vouch for (a redelivery, counted), or null when
   * Redis cannot answer now: the attempt then runs as a first delivery would.
   */
  async inspect(
    taskId: string,
    { redelivered }: { redelivered: boolean },
  ): Promise<AttemptState | null> {
    if (!this.store.available) return null;
    try {
      return await this.read('an attempt', this.store.inspect(taskId, { redelivered }));
    } catch (error) {
      this.logger.warn(
        `Could not read the record of task ${taskId} before running it: ${String(error)}`,
      );
      return null;
    }
  }

  /** The record and the attempt as it travels (Redis only). */
  load(taskId: string): Promise<StoredTask | null> {
    return this.read('a task', this.store.load(taskId));
  }

  /**
   * A record from Redis, or from the archive once it has expired from Redis (or while Redis is
   * unreachable). While the archive is unreachable, Redis alone answers: reads of live tasks never
   * depend on MongoDB.
   */
  async get(taskId: string): Promise<TaskRecord | null> {
    const archive = this.archive?.connected ? this.archive : null;
    if (archive && !this.store.available) return archive.get(taskId);
    const record = await this.read('a task', this.store.get(taskId));
    return record ?? (archive ? archive.get(taskId) : null);
  }

  private archiveIfApplied(
    change: TaskStatusChange,
    result: TaskStatusResult,
    { durable = false }: RecordOptions,
  ): TaskStatusResult | Promise<TaskStatusResult> {
    // A change that did not apply still carries the attempt's description, which the archive
    // may lack (a worker's change can overtake its producer's).
    if (this.archive && (result.applied || change.task)) {
      const archiving = this.archive.write(change);
      if (durable) return archiving.then(() => result);
      archiving.catch(() => {});
    }
    return result;
  }

  /** The write's result, or null once it has waited one to two beats. */
  private watch(writing: Promise<TaskStatusResult>): Promise<TaskStatusResult | null> {
    this.startClock();
    return new Promise((resolve) => {
      const late = () => resolve(null);
      this.watched.add(late);
      const settle = () => {
        if (!this.watched.delete(late)) this.watchedBefore.delete(late);
        // Its result, or its failure: the promise follows the settled write.
        resolve(writing);
      };
      writing.then(settle, settle);
    });
  }

  private startClock(): void {
    if (this.clock) return;
    this.clock = setInterval(() => {
      this.giveUp(this.watchedBefore);
      [this.watchedBefore, this.watched] = [this.watched, this.watchedBefore];
    }, this.wait);
    this.clock.unref();
  }

  private giveUp(watched: Set<() => void>): void {
    for (const late of watched) late();
    watched.clear();
  }

  private defer(
    change: TaskStatusChange,
    writing: Promise<TaskStatusResult>,
    options: RecordOptions,
  ): Promise<TaskStatusResult> {
    if (this.waiting.size === 0) {
      this.logger.warn('Redis is unreachable: status writes wait for it, tasks go on');
    }
    const landing = writing
      .catch((error: unknown) => this.logger.error(`A status write failed: ${String(error)}`))
      .finally(() => {
        this.waiting.delete(landing);
        if (this.waiting.size > 0) return;
        const lost = this.dropped;
        this.dropped = 0;
        this.logger.log(
          lost ? `Status writes caught up; ${lost} could not be kept` : 'Status writes caught up',
        );
      });
    this.waiting.add(landing);
    return this.asDeferred(change, options);
  }

  private drop(change: TaskStatusChange, options: RecordOptions): Promise<TaskStatusResult> {
    if (this.dropped++ === 0) {
      this.logger.error(
        `${MAX_DEFERRED_WRITES} status writes are waiting for Redis; later ones are not kept`,
      );
    }
    return this.asDeferred(change, options);
  }

  /** The archive does not depend on Redis: it gets the change now. */
  private asDeferred(change: TaskStatusChange, options: RecordOptions): Promise<TaskStatusResult> {
    const deferred = { applied: true, previous: null, deferred: true };
    return Promise.resolve(this.archiveIfApplied(change, deferred, options));
  }

  private read<T>(what: string, reading: Promise<T>): Promise<T> {
    const timeout = this.options.requestTimeout;
    return within(reading, timeout, () => {
      reading.catch(() => {});
      throw new StoreUnavailableError(`reading ${what}`, timeout);
    });
  }
}

/** The record of an attempt a worker runs (see `TaskLog.start`). */
export class AttemptRecord {
  constructor(
    private readonly log: TaskLog,
    private readonly task: TaskEnvelope,
    /** The retries that apply (the handler's when the task set none). */
    private readonly retry: number,
    /** When the handler started. */
    readonly startedAt: Date,
    /** The record lacks the description: the worker's next change carries it. */
    private undescribed: boolean,
  ) {}

  /** Progress reported but not written yet: the attempt's next change carries it. */
  private progressLeft?: string;

  /**
   * Records the handler's progress (JSON text). It lands whatever the status (and moves a
   * `queued` record to `in_progress`), unless the attempt has finished.
   */
  reportProgress(progress: string): Promise<TaskStatusResult> {
    return this.write('in_progress', { progress });
  }

  /** Progress the outcome (or the attempt's last change) writes, if nothing writes it before. */
  carryProgress(progress: string | undefined): void {
    this.progressLeft = progress;
  }

  /** Records that the attempt is still running (`in_progress`), once it has run a while. */
  progress(): Promise<TaskStatusResult> {
    return this.write('in_progress', {});
  }

  /** Records the worker's outcome, with the description where the record lacks it. */
  finish(
    status: 'success' | 'failed' | 'retry',
    fields: OutcomeFields = {},
  ): Promise<TaskStatusResult> {
    return this.write(status, fields);
  }

  /**
   * The attempt ends with no outcome of the worker's (skipped, cancelled, handed back at
   * shutdown): a record that lacks the description still gets it.
   */
  async leave(): Promise<void> {
    if (this.undescribed || this.progressLeft !== undefined) await this.write('in_progress', {});
  }

  private write(status: TaskStatus, fields: OutcomeFields): Promise<TaskStatusResult> {
    const task = this.undescribed ? this.task : undefined;
    this.undescribed = false;
    if (this.progressLeft !== undefined) {
      fields = { progress: this.progressLeft, ...fields };
      this.progressLeft = undefined;
    }
    return this.log.record(
      {
        taskId: this.task.taskId,
        status,
        at: new Date(),
        startedAt: this.startedAt,
        retry: this.retry,
        ...fields,
        task,
      },
      { deferrable: true },
    );
  }
}
