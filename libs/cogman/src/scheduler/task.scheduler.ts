import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { TASK_BROKER, type TaskBroker } from '../broker/task-broker';
import { TaskDispatcher } from '../dispatch/task.dispatcher';
import { RESOLVED_OPTIONS, type ResolvedCogmanOptions } from '../config';
import { TaskNotFoundError, TaskStatusConflictError } from '../errors';
import { TASK_ARCHIVE, type ArchiveSchedule } from '../store/task-archive';
import { TASK_LOG_STORE, type TaskLogStore } from '../store/task-log.store';
import type { TaskStatus } from '../task';
import { COGMAN_CLOCK, SYSTEM_CLOCK, type Clock } from '../util/clock';
import { within } from '../util/within';

/** How often the schedule is checked: due tasks are published within about this long. */
export const SCHEDULER_INTERVAL = 200;
/** Most tasks taken off the schedule in one step. */
const BATCH = 500;

/**
 * Publishes delayed tasks (and delayed retries) when they are due. Any number of processes may
 * run it: each due task is claimed atomically in Redis by one of them, and a claim its process
 * did not see through (it died) lapses and the task is due again.
 *
 * With the MongoDB archive, the schedule survives a loss of Redis's data: at start and after
 * every reconnection to Redis, the tasks the archive holds as scheduled and Redis no longer knows
 * are put back on the schedule.
 */
@Injectable()
export class TaskScheduler {
  private readonly logger = new Logger('Cogman:Scheduler');
  private timer?: NodeJS.Timeout;
  private tick?: Promise<void>;
  private running = false;
  /** How long a claim holds: longer than a publish can take (it gives up after requestTimeout). */
  private readonly lease: number;
  /** The store's connection count at the last restore from the archive. */
  private restoredAt = 0;

  constructor(
    @Inject(TASK_LOG_STORE) private readonly store: TaskLogStore,
    private readonly dispatcher: TaskDispatcher,
    @Inject(TASK_BROKER) private readonly publisher: TaskBroker,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedCogmanOptions,
    @Optional() @Inject(TASK_ARCHIVE) private readonly archive: ArchiveSchedule | null = null,
    @Optional() @Inject(COGMAN_CLOCK) private readonly clock: Clock = SYSTEM_CLOCK,
  ) {
    this.lease = Math.max(1000, 3 * options.requestTimeout);
  }

  start(): void {
    if (!this.options.startScheduler || this.running) return;
    this.running = true;
    this.next(0);
  }

  /** Stops checking; waits (up to requestTimeout) for a check under way. */
  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    if (this.tick) await within(this.tick, this.options.requestTimeout, () => undefined);
  }

  /**
   * Publishes a scheduled task now. If the scheduler has just claimed it, it is being published
   * already and that is reported; any other status is refused.
   */
  async runNow(taskId: string): Promise<TaskStatus> {
    if (await this.store.claim(taskId, new Date(this.clock.now()), this.lease))
      return this.promote(taskId);
    const current = await this.store.get(taskId);
    if (!current) throw new TaskNotFoundError(taskId);
    if (current.status === 'scheduled') return 'scheduled';
    throw new TaskStatusConflictError(
      taskId,
      current.status,
      'run now',
      'only a scheduled task can be run now',
    );
  }

  private next(delay: number): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      this.tick = this.publishDue()
        .then((full) => this.next(full ? 0 : SCHEDULER_INTERVAL))
        .catch((error: unknown) => {
          this.logger.warn(`Could not check the schedule: ${String(error)}`);
          this.next(SCHEDULER_INTERVAL);
        });
    }, delay);
    this.timer.unref();
  }

  /**
   * Publishes what is due; true when a full batch was taken (more may be waiting). The scheduler
   * does this every `SCHEDULER_INTERVAL`; the testing kit calls it when its clock moves.
   */
  async publishDue(): Promise<boolean> {
    if (this.archive?.connected && this.store.available) {
      const connections = this.store.connections;
      if (connections !== this.restoredAt) {
        try {
          await this.restore(this.archive);
          this.restoredAt = connections;
        } catch (error) {
          // Tried again on the next check; what Redis holds is published meanwhile.
          this.logger.warn(`Could not restore the schedule from MongoDB: ${String(error)}`);
        }
      }
    }
    // While the broker or Redis is unreachable, due tasks stay on the schedule.
    if (!this.publisher.connected || !this.store.available) return false;
    const due = await this.store.claimDue(new Date(this.clock.now()), BATCH, this.lease);
    await Promise.all(
      due.map((taskId) =>
        this.promote(taskId).catch((error: unknown) => {
          // The claim lapses and the task is due again.
          this.logger.warn(`Could not publish scheduled task ${taskId}: ${String(error)}`);
        }),
      ),
    );
    return due.length === BATCH;
  }

  /** Puts back on the schedule the archived scheduled tasks that Redis does not know. */
  private async restore(archive: ArchiveSchedule): Promise<void> {
    let restored = 0;
    for (let after: string | null = null; ;) {
      const page = await archive.scheduledTasks(after, BATCH);
      const known = await Promise.all(page.map(({ task }) => this.store.get(task.taskId)));
      const lost = page.filter((_, i) => known[i] === null);
      await Promise.all(
        lost.map(({ task, runAt }) =>
          this.store.record({
            taskId: task.taskId,
            status: 'scheduled',
            at: new Date(),
            task,
            runAt,
          }),
        ),
      );
      restored += lost.length;
      if (page.length < BATCH) break;
      after = page[page.length - 1].task.taskId;
    }
    if (restored > 0) {
      this.logger.warn(
        `Redis did not hold ${restored} scheduled task(s) that MongoDB did; they are scheduled again`,
      );
    }
  }

  private async promote(taskId: string): Promise<TaskStatus> {
    const stored = await this.store.load(taskId);
    if (stored?.record.status !== 'scheduled') {
      // Cancelled meanwhile, or already published by a claimer whose lease lapsed.
      await this.store.release(taskId);
      return stored?.record.status ?? 'cancelled';
    }
    return this.dispatcher.publishRecorded(stored.task);
  }
}
