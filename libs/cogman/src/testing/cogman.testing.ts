import {
  Inject,
  Injectable,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
  Optional,
} from '@nestjs/common';
import { TaskScheduler } from '../scheduler/task.scheduler';
import { TASK_LOG_STORE } from '../store/task-log.store';
import { TaskLog } from '../store/task-log';
import {
  decodePayload,
  fromDelivery,
  type DeadLetterReason,
  type TaskEnvelope,
  type TaskPriority,
} from '../task';
import { COGMAN_CLOCK } from '../util/clock';
import { QueuePauses } from '../worker/queue-pauses';
import { RecurringTaskScheduler } from '../scheduler/recurring-task.scheduler';
import { TaskSchedules } from '../client/task-schedules';
import { TaskAbort } from '../worker/task-abort';
import { TaskExecutor } from '../worker/task.executor';
import { InMemoryTaskBroker } from './in-memory-task.broker';
import { InMemoryTaskLogStore } from './in-memory-task-log.store';
import type { TestClock } from './test-clock';

/** One attempt as the testing kit saw it published. */
export interface SentTask<P = unknown> {
  taskId: string;
  name: string;
  /** As the handler receives it: parsed JSON, or a Buffer. */
  payload: P;
  priority: TaskPriority;
  attempt: number;
  originalTaskId: string;
  primaryKey: string | null;
  headers: Record<string, string>;
  createdAt: Date;
  /** Settings given at send time (undefined: the handler's apply). */
  retry?: number;
  timeout?: number;
}

/** A message the worker could not run here, and why. */
export interface DeadLetteredTask {
  taskId: string | undefined;
  name: string | undefined;
  reason: DeadLetterReason;
  detail: string;
}

/** Most deliveries one `drain`/`runAll` runs before it gives up (a task that retries forever). */
const DEFAULT_MAX_DELIVERIES = 10_000;

/**
 * The control of Cogman's testing kit (`CogmanTestingModule`): what was sent, and when the tasks
 * run. Tasks go through Cogman's own client, dispatcher, executor and scheduler, with the broker
 * and the task log in memory and a clock the test moves: retries, backoff, delays, cancellation,
 * dead letters and the records behave as with RabbitMQ and Redis.
 */
@Injectable()
export class CogmanTesting implements OnApplicationBootstrap, OnModuleDestroy {
  private draining?: Promise<number>;

  constructor(
    private readonly broker: InMemoryTaskBroker,
    private readonly executor: TaskExecutor,
    private readonly scheduler: TaskScheduler,
    private readonly log: TaskLog,
    @Inject(TASK_LOG_STORE) private readonly store: InMemoryTaskLogStore,
    @Inject(COGMAN_CLOCK) private readonly clock: TestClock,
    @Optional() @Inject(QueuePauses) private readonly pauses: QueuePauses | null = null,
    @Optional()
    @Inject(RecurringTaskScheduler)
    private readonly recurring: RecurringTaskScheduler | null = null,
    @Optional() @Inject(TaskSchedules) private readonly schedules: TaskSchedules | null = null,
  ) {}

  /** Declared schedules (module options, handlers) are set up once the handlers are known. */
  async onApplicationBootstrap(): Promise<void> {
    await this.schedules?.reconcile();
  }

  /** The kit's time: where delays and backoffs are measured from. */
  now(): Date {
    return new Date(this.clock.now());
  }

  /** Every attempt published so far, in order (first attempts and retries alike). */
  published<P = unknown>(name?: string): SentTask<P>[] {
    return this.broker.published
      .filter((task) => name === undefined || task.name === name)
      .map((task) => sentTask<P>(task));
  }

  /** The tasks sent (first attempts only, published or scheduled), optionally of one name. */
  sent<P = unknown>(name?: string): SentTask<P>[] {
    const firsts = new Map<string, TaskEnvelope>();
    for (const { task } of this.store.tasks.values()) {
      if (task.attempt === 1 && (name === undefined || task.name === name)) {
        firsts.set(task.taskId, task);
      }
    }
    return [...firsts.values()]
      .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime())
      .map((task) => sentTask<P>(task));
  }

  /** Messages waiting to run now (high priority first). */
  queued<P = unknown>(): SentTask<P>[] {
    return this.broker.peek().flatMap(({ msg, priority }) => {
      const decoded = fromDelivery(msg, priority);
      return decoded.ok ? [sentTask<P>(decoded.task)] : [];
    });
  }

  /** Attempts waiting for their due time (delayed tasks, retries in their backoff). */
  scheduled(): { taskId: string; runAt: Date }[] {
    return [...this.store.schedule.entries()]
      .sort(([, a], [, b]) => a - b)
      .map(([taskId, at]) => ({ taskId, runAt: new Date(at) }));
  }

  /** Messages the worker dead-lettered (a name no handler takes, a payload that is not JSON). */
  deadLetters(): DeadLetteredTask[] {
    return this.broker.deadLetters.map(({ msg, reason, detail }) => {
      const decoded = fromDelivery(msg, 'low');
      return {
        taskId: decoded.ok ? decoded.task.taskId : decoded.taskId,
        name: decoded.ok ? decoded.task.name : decoded.name,
        reason,
        detail,
      };
    });
  }

  /**
   * Runs every task that can run now, one at a time, until none is left: those waiting in the
   * queues, what they publish (an immediate retry), and scheduled attempts already due. Resolves
   * with the number of deliveries run.
   */
  drain({
    maxDeliveries = DEFAULT_MAX_DELIVERIES,
  }: { maxDeliveries?: number } = {}): Promise<number> {
    this.draining ??= this.runQueued(maxDeliveries).finally(() => (this.draining = undefined));
    return this.draining;
  }

  /** Moves the clock forward by `ms`, then runs what has become due (see `drain`). */
  async advance(ms: number): Promise<number> {
    this.clock.advance(ms);
    return this.drain();
  }

  /**
   * Runs until nothing is queued or scheduled, moving the clock to each next due time: every
   * retry and delayed task runs, backoffs included, in no real time. Resolves with the number of
   * deliveries run; rejects past `maxDeliveries` (a task that keeps publishing others).
   */
  async runAll({
    maxDeliveries = DEFAULT_MAX_DELIVERIES,
  }: { maxDeliveries?: number } = {}): Promise<number> {
    let ran = 0;
    for (;;) {
      ran += await this.drain({ maxDeliveries: maxDeliveries - ran });
      const next = this.scheduled()[0];
      if (!next) return ran;
      this.clock.advanceTo(next.runAt.getTime());
    }
  }

  /** Runs what is waiting, unless a run is under way already (which will take it too). */
  async runIfIdle(): Promise<void> {
    if (!this.draining) await this.drain();
  }

  /** Forgets what was published and dead-lettered (records and waiting tasks stay). */
  clearHistory(): void {
    this.broker.clearHistory();
  }

  onModuleDestroy(): void {
    this.log.close();
  }

  private async runQueued(maxDeliveries: number): Promise<number> {
    let ran = 0;
    for (;;) {
      // Recurring schedules' due ticks send their tasks (ticks do not move the clock in runAll).
      await this.recurring?.sendDue();
      await this.scheduler.publishDue();
      // A paused priority's tasks wait (CogmanClient.pause), as they would in their queues.
      const next = this.broker.take(new Set(this.pauses?.pausedNow() ?? []));
      if (!next) return ran;
      if (ran >= maxDeliveries) {
        throw new Error(
          `CogmanTesting ran ${maxDeliveries} deliveries and tasks are still waiting: a task that keeps sending others?`,
        );
      }
      ran++;
      const outcome = await this.executor.execute({ ...next, abort: new TaskAbort() });
      if (outcome === 'requeue') {
        throw new Error(
          `Task ${String(next.msg.properties.messageId)} was handed back to its queue`,
        );
      }
    }
  }
}

function sentTask<P>(task: TaskEnvelope): SentTask<P> {
  const sent: SentTask<P> = {
    taskId: task.taskId,
    name: task.name,
    payload: decodePayload(task.payload) as P,
    priority: task.priority,
    attempt: task.attempt,
    originalTaskId: task.originalTaskId,
    primaryKey: task.primaryKey,
    headers: task.headers,
    createdAt: task.createdAt,
  };
  if (task.retry !== undefined) sent.retry = task.retry;
  if (task.timeout !== undefined) sent.timeout = task.timeout;
  return sent;
}
