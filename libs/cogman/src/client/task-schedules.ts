import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { RESOLVED_OPTIONS, type ResolvedCogmanOptions } from '../config';
import { OptionsInvalidError, ScheduleNotFoundError } from '../errors';
import { RecurringTaskScheduler } from '../scheduler/recurring-task.scheduler';
import { COGMAN_REDIS, onReconnect, type CogmanRedis } from '../store/redis-connection';
import {
  SCHEDULE_STORE,
  type ScheduleSource,
  type ScheduleStorage,
  type StoredSchedule,
} from '../store/schedule.store';
import { TaskLog } from '../store/task-log';
import { ScheduleBackup } from '../store/schedule-backup';
import { nextTick, normaliseSchedule, type TaskScheduleDefinition, type TaskStatus } from '../task';
import { COGMAN_CLOCK, SYSTEM_CLOCK, type Clock } from '../util/clock';
import { TaskHandlerRegistry } from '../worker/task-handler.registry';

/** A recurring schedule as `CogmanClient.listSchedules` describes it. */
export interface CogmanSchedule extends TaskScheduleDefinition {
  /** `code`: declared in the module options or on a handler (reconciled at boot); `api`: at run time. */
  source: ScheduleSource;
  paused: boolean;
  /** When its next tick sends a task; null while it is paused. */
  nextRunAt: Date | null;
  /** The last tick that sent a task, and that task (its current attempt) as the log has it. */
  lastRunAt: Date | null;
  lastTask: { taskId: string; status: TaskStatus | null } | null;
}

/**
 * The recurring schedules of the namespace: created, replaced, removed, paused, resumed and
 * triggered at run time (`CogmanClient`), and those declared in code reconciled at boot.
 */
@Injectable()
export class TaskSchedules {
  private readonly logger = new Logger('Cogman:Scheduler');

  constructor(
    @Inject(SCHEDULE_STORE) private readonly store: ScheduleStorage,
    private readonly recurring: RecurringTaskScheduler,
    private readonly log: TaskLog,
    private readonly registry: TaskHandlerRegistry,
    private readonly backup: ScheduleBackup,
    /** Null in the testing kit: reconciled once, at start. */
    @Optional() @Inject(COGMAN_REDIS) private readonly redis: CogmanRedis | null,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedCogmanOptions,
    @Optional() @Inject(COGMAN_CLOCK) private readonly clock: Clock = SYSTEM_CLOCK,
  ) {}

  /** Creates or replaces a schedule; a changed one starts from its next tick after now. */
  async upsert(
    input: TaskScheduleDefinition,
    source: ScheduleSource = 'api',
  ): Promise<CogmanSchedule> {
    const definition = normaliseSchedule(input);
    await this.write(definition, source);
    return (await this.get(definition.id))!;
  }

  async remove(id: string): Promise<void> {
    if (!(await this.store.remove(id))) throw new ScheduleNotFoundError(id);
    await this.backup.delete(id);
  }

  async get(id: string): Promise<CogmanSchedule | null> {
    const stored = await this.store.get(id);
    return stored ? this.describe(stored) : null;
  }

  async list(): Promise<CogmanSchedule[]> {
    return Promise.all((await this.store.list()).map((stored) => this.describe(stored)));
  }

  async pause(id: string): Promise<CogmanSchedule> {
    if (!(await this.store.pause(id))) throw new ScheduleNotFoundError(id);
    return this.copied(id);
  }

  /** Resumes from the next tick after now: ticks that passed while paused are not sent. */
  async resume(id: string): Promise<CogmanSchedule> {
    const stored = await this.store.get(id);
    if (!stored) throw new ScheduleNotFoundError(id);
    await this.store.resume(id, nextTick(stored.definition, this.clock.now()));
    return this.copied(id);
  }

  /** Sends the schedule's task now, beside its ticks; resolves with the task's id. */
  async trigger(id: string): Promise<string> {
    const stored = await this.store.get(id);
    if (!stored) throw new ScheduleNotFoundError(id);
    return (await this.recurring.trigger(stored.definition)).taskId;
  }

  /**
   * Makes the stored schedules declared in code match this process's declarations: each is
   * created or replaced (an unchanged one keeps its state), and a code schedule this process no
   * longer declares is removed. Done by processes that run the scheduler and either a worker or
   * declarations of their own (a producer-only process with none leaves the schedules alone), at
   * boot and again each time Redis reconnects or, in a Cluster, fails a node over (it may have
   * lost data).
   */
  async reconcile(): Promise<void> {
    const declared = this.declared();
    const { startScheduler, startWorker } = this.options;
    if (!startScheduler) return;
    const reconciles = startWorker || declared.length > 0;
    const run = async () => {
      try {
        if (this.backup.enabled) await this.restore();
        if (!reconciles) return;
        for (const definition of declared) await this.write(definition, 'code');
        const ids = new Set(declared.map((definition) => definition.id));
        for (const stored of await this.store.list()) {
          if (stored.source !== 'code' || ids.has(stored.definition.id)) continue;
          await this.store.remove(stored.definition.id);
          await this.backup.delete(stored.definition.id);
          this.logger.log(`Schedule ${stored.definition.id} is no longer declared; removed`);
        }
      } catch (error) {
        this.logger.warn(`Could not reconcile the declared schedules: ${String(error)}`);
      }
    };
    if (!this.redis) return run();
    onReconnect(this.redis, () => void run());
    if (this.redis.status === 'ready') await run();
  }

  /**
   * Puts back in Redis the schedules MongoDB's copy has and Redis does not (Redis lost its data),
   * paused ones paused; then copies to MongoDB what Redis has (changes made while it was down).
   */
  private async restore(): Promise<void> {
    const copies = await this.backup.all();
    if (!copies) return;
    let restored = 0;
    for (const copy of copies) {
      if (await this.store.get(copy.definition.id)) continue;
      const now = this.clock.now();
      await this.store.upsert(copy.definition, copy.source, nextTick(copy.definition, now), now);
      if (copy.paused) await this.store.pause(copy.definition.id);
      restored++;
    }
    if (restored > 0) {
      this.logger.warn(`Redis did not hold ${restored} schedule(s) that MongoDB did; restored`);
    }
    for (const stored of await this.store.list()) {
      await this.backup.save(stored);
    }
  }

  /** The schedule as it is now, copied to MongoDB. */
  private async copied(id: string): Promise<CogmanSchedule> {
    const stored = await this.store.get(id);
    if (!stored) throw new ScheduleNotFoundError(id);
    await this.backup.save(stored);
    return this.describe(stored);
  }

  /** The schedules of the module options and of the handlers, checked (ids unique). */
  private declared(): TaskScheduleDefinition[] {
    const declared: TaskScheduleDefinition[] = [...this.options.schedules];
    for (const name of this.registry.names()) {
      const schedule = this.registry.get(name)?.options.schedule;
      if (schedule)
        declared.push(normaliseSchedule({ ...schedule, id: schedule.id ?? name, name }));
    }
    const seen = new Set<string>();
    for (const { id } of declared) {
      if (seen.has(id)) {
        throw new OptionsInvalidError(
          'schedules',
          JSON.stringify(id),
          'declares this schedule id twice',
        );
      }
      seen.add(id);
    }
    return declared;
  }

  private async write(definition: TaskScheduleDefinition, source: ScheduleSource): Promise<void> {
    const now = this.clock.now();
    const changed = await this.store.upsert(definition, source, nextTick(definition, now), now);
    if (!changed) return;
    this.logger.log(`Schedule ${definition.id} set (${describeTiming(definition)})`);
    const stored = await this.store.get(definition.id);
    if (stored) await this.backup.save(stored);
  }

  private async describe(stored: StoredSchedule): Promise<CogmanSchedule> {
    let lastTask: CogmanSchedule['lastTask'] = null;
    if (stored.lastTaskId) {
      const record = await this.log.get(stored.lastTaskId).catch(() => null);
      lastTask = { taskId: stored.lastTaskId, status: record?.status ?? null };
    }
    return {
      ...stored.definition,
      source: stored.source,
      paused: stored.paused,
      nextRunAt: stored.paused || stored.nextRun === null ? null : new Date(stored.nextRun),
      lastRunAt: stored.lastTick === null ? null : new Date(stored.lastTick),
      lastTask,
    };
  }
}

function describeTiming(definition: TaskScheduleDefinition): string {
  if (definition.every !== undefined) return `every ${definition.every} ms`;
  return `cron "${definition.cron}"${definition.timezone ? ` in ${definition.timezone}` : ''}`;
}
