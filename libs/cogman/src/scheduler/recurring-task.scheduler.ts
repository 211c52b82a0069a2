import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { RESOLVED_OPTIONS, type ResolvedCogmanOptions } from '../config';
import { TaskDispatcher } from '../dispatch/task.dispatcher';
import { SCHEDULE_STORE, type ScheduleStorage } from '../store/schedule.store';
import {
  buildTask,
  MISSED_TICK_TOLERANCE,
  nextTick,
  tickPrimaryKey,
  tickTaskId,
  type TaskEnvelope,
  type TaskScheduleDefinition,
} from '../task';
import { COGMAN_CLOCK, SYSTEM_CLOCK, type Clock } from '../util/clock';
import { within } from '../util/within';
import { TaskScheduler } from './task.scheduler';

/** How often due ticks are looked for. */
export const RECURRING_INTERVAL = 200;
/** Most schedules claimed in one step. */
const BATCH = 100;

/**
 * Sends the tasks of recurring schedules. Any number of processes may run it: each due tick is
 * claimed in Redis (one step) by one of them, for a lease; the claimer records the tick's task
 * `scheduled` at the tick's time, under an id derived from the schedule and the tick, has it
 * published at once, then puts the next tick on the schedule. A claimer that dies mid-way loses
 * nothing: its lease lapses, another process claims the same tick, and the task id it derives is
 * the same, so the tick still makes one task (the delayed-task scheduler publishes a task that
 * was recorded and not yet published).
 */
@Injectable()
export class RecurringTaskScheduler {
  private readonly logger = new Logger('Cogman:Scheduler');
  private readonly lease: number;
  /** This process's claims are told from others' by this token. */
  private readonly token = randomUUID();
  private timer?: NodeJS.Timeout;
  private tick?: Promise<void>;
  private running = false;

  constructor(
    @Inject(SCHEDULE_STORE) private readonly store: ScheduleStorage,
    private readonly dispatcher: TaskDispatcher,
    private readonly scheduler: TaskScheduler,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedCogmanOptions,
    @Optional() @Inject(COGMAN_CLOCK) private readonly clock: Clock = SYSTEM_CLOCK,
  ) {
    this.lease = Math.max(1000, 3 * options.requestTimeout);
  }

  start(): void {
    if (!this.options.startScheduler || this.running) return;
    this.running = true;
    this.next(0);
  }

  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    if (this.tick) await within(this.tick, this.options.requestTimeout, () => undefined);
  }

  /** Sends what is due; true when a full batch was claimed. */
  async sendDue(): Promise<boolean> {
    if (!this.store.available) return false;
    const now = this.clock.now();
    const claimed = await this.store.claim(now, BATCH, this.lease, this.token);
    await Promise.all(
      claimed.map(({ id, definition, tick }) =>
        this.handle(id, definition, tick, now).catch((error: unknown) => {
          // The claim lapses and the tick is handled again, by whichever process claims it.
          this.logger.warn(`Could not send the task of schedule ${id}: ${String(error)}`);
        }),
      ),
    );
    return claimed.length === BATCH;
  }

  /** Sends a schedule's task now, outside its ticks (`triggerSchedule`). */
  async trigger(definition: TaskScheduleDefinition): Promise<TaskEnvelope> {
    const now = this.clock.now();
    const { task } = buildTask(taskOptions(definition, now), new Date(now));
    await this.dispatcher.dispatch(task);
    return task;
  }

  private async handle(
    id: string,
    definition: TaskScheduleDefinition,
    tick: number,
    now: number,
  ): Promise<void> {
    // A tick found more than the tolerance late was missed (no scheduler ran, Redis was down):
    // `once` sends one task for all missed ticks (this one's), `skip` none; the next tick is the
    // first one within the tolerance, so that the ticks of the last moments still run, each.
    const missed = now - tick > MISSED_TICK_TOLERANCE;
    const send = !missed || definition.missed !== 'skip';
    let sent: { tick: number; taskId: string } | null = null;
    if (send) sent = { tick, taskId: await this.send(definition, tick) };
    const next = nextTick(definition, missed ? now - MISSED_TICK_TOLERANCE : tick);
    await this.store.commit(id, this.token, next, sent);
  }

  /** Records the tick's task (once, whoever handles the tick) and has it published now. */
  private async send(definition: TaskScheduleDefinition, tick: number): Promise<string> {
    const { task } = buildTask(taskOptions(definition, tick), new Date(this.clock.now()));
    const taskId = tickTaskId(definition.id, tick);
    const tickTask: TaskEnvelope = { ...task, taskId, originalTaskId: taskId };
    const status = await this.dispatcher.schedule(tickTask, new Date(tick));
    // Recorded now, or by an earlier claimer of this tick: either way, published when due (now).
    if (status === 'scheduled') await this.scheduler.runNow(taskId).catch(() => undefined);
    return taskId;
  }

  private next(delay: number): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      this.tick = this.sendDue()
        .then((full) => this.next(full ? 0 : RECURRING_INTERVAL))
        .catch((error: unknown) => {
          this.logger.warn(`Could not check the recurring schedules: ${String(error)}`);
          this.next(RECURRING_INTERVAL);
        });
    }, delay);
    this.timer.unref();
  }
}

/** What a schedule sends, as `sendTask` takes it. */
function taskOptions(definition: TaskScheduleDefinition, tick: number) {
  const { id, name, payload, priority, retry, backoff, timeout, headers } = definition;
  return {
    name,
    payload,
    priority,
    retry,
    backoff,
    timeout,
    headers,
    primaryKey: tickPrimaryKey(id, tick),
  };
}
