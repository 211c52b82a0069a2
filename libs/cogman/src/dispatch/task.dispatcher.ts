import { Inject, Injectable } from '@nestjs/common';
import { TASK_BROKER, type TaskBroker } from '../broker/task-broker';
import { ClientClosedError } from '../errors';
import { TaskLog } from '../store/task-log';
import { isFinished, type TaskEnvelope, type TaskStatus } from '../task';
import { OfflineTaskBuffer } from './offline-task.buffer';

/** Writes on the task path go on while Redis is unreachable (see TaskLog). */
const DEFERRABLE = { deferrable: true } as const;

/** Options of a dispatch. */
export interface DispatchOptions {
  /** Do nothing if the attempt with this id was cancelled (see TaskStatusChange). */
  unlessCancelled?: string;
  /** The caller has recorded the attempt already (`initiated`, with its description). */
  recorded?: boolean;
}

/**
 * The one path a task attempt takes into the queue, for new tasks, retries and due scheduled
 * tasks alike: record it, publish it and wait for the broker's confirm, record it `queued`.
 */
@Injectable()
export class TaskDispatcher {
  private readonly pending = new Set<Promise<unknown>>();
  private closed = false;

  constructor(
    @Inject(TASK_BROKER) private readonly publisher: TaskBroker,
    private readonly log: TaskLog,
    private readonly offline: OfflineTaskBuffer,
  ) {}

  /**
   * Publishes the attempt and resolves once the broker has confirmed it and it is recorded
   * `queued`. It is recorded `initiated` first only where that matters: when the broker is
   * unreachable (the task waits, known), when publishing fails, and for a guarded attempt (a
   * retry, vetoed if its previous attempt was cancelled).
   */
  dispatch(task: TaskEnvelope, options: DispatchOptions = {}): Promise<TaskStatus> {
    return this.track(async () => {
      if (!options.unlessCancelled) return this.publish(task, { recorded: !!options.recorded });
      const created = await this.recordInitiated(task, options.unlessCancelled);
      // Vetoed (its previous attempt was cancelled) or already finished: nothing to publish.
      if (!created.applied && isFinished(created.previous)) return created.previous!;
      return this.publish(task, { recorded: true });
    });
  }

  /** Records the attempt `scheduled`; the scheduler publishes it when `runAt` comes. */
  schedule(task: TaskEnvelope, runAt: Date, options: DispatchOptions = {}): Promise<TaskStatus> {
    return this.track(async () => {
      const result = await this.log.record(
        {
          taskId: task.taskId,
          status: 'scheduled',
          at: new Date(),
          task,
          runAt,
          unlessCancelled: options.unlessCancelled,
        },
        DEFERRABLE,
      );
      return result.applied ? 'scheduled' : result.previous!;
    });
  }

  /**
   * Publishes an attempt already recorded (a due scheduled task) and records it `queued`. While
   * the broker is unreachable this fails: the schedule keeps the task (not the offline buffer).
   */
  publishRecorded(task: TaskEnvelope): Promise<TaskStatus> {
    return this.track(() => this.publish(task, { buffer: false, recorded: true }));
  }

  /** Refuses new tasks and waits for those being sent (and for a drain of the offline buffer). */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.pending]);
    await this.offline.close();
  }

  private track(send: () => Promise<TaskStatus>): Promise<TaskStatus> {
    if (this.closed) return Promise.reject(new ClientClosedError());
    // Before the application has started Cogman, a task waits for the start (bounded).
    const sending = this.publisher.started ? send() : this.publisher.untilStarted().then(send);
    this.pending.add(sending);
    const forget = () => this.pending.delete(sending);
    sending.then(forget, forget);
    return sending;
  }

  /**
   * Publishes and records `queued`. While the broker is unreachable (or tasks accepted meanwhile
   * still wait, so that order is kept), the task waits in the offline buffer and stays `initiated`.
   */
  private async publish(
    task: TaskEnvelope,
    { buffer = true, recorded }: { buffer?: boolean; recorded: boolean },
  ): Promise<TaskStatus> {
    if (buffer && (!this.publisher.connected || this.offline.size > 0)) {
      if (!recorded) await this.recordInitiated(task);
      return this.keepOffline(task);
    }
    try {
      await this.publisher.publish(task);
    } catch (error) {
      if (!recorded) await this.recordInitiated(task);
      // The connection went while the message was unconfirmed: keep it for the reconnect.
      if (buffer && !this.publisher.connected) return this.keepOffline(task);
      throw error;
    }
    await this.log.queued(task, { described: recorded });
    return 'queued';
  }

  private recordInitiated(task: TaskEnvelope, unlessCancelled?: string) {
    return this.log.record(
      { taskId: task.taskId, status: 'initiated', at: task.createdAt, task, unlessCancelled },
      DEFERRABLE,
    );
  }

  private async keepOffline(task: TaskEnvelope): Promise<TaskStatus> {
    await this.offline.add(task);
    if (this.publisher.connected) void this.offline.drain();
    return 'initiated';
  }
}
