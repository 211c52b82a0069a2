import { Injectable } from '@nestjs/common';
import { TaskPublisher } from '../broker/task.publisher';
import { ClientClosedError } from '../errors';
import { TaskLog } from '../store/task-log';
import type { TaskEnvelope, TaskStatus } from '../task';

/**
 * The one path a task attempt takes into the queue, for new tasks and retries alike: record it
 * `initiated`, publish it and wait for the broker's confirm, record it `queued`.
 */
@Injectable()
export class TaskDispatcher {
  private readonly pending = new Set<Promise<unknown>>();
  private closed = false;

  constructor(
    private readonly publisher: TaskPublisher,
    private readonly store: TaskLog,
  ) {}

  /** Resolves with the status reached once the broker has confirmed the message. */
  dispatch(task: TaskEnvelope): Promise<TaskStatus> {
    if (this.closed) return Promise.reject(new ClientClosedError());
    const sending = this.send(task);
    this.pending.add(sending);
    const forget = () => this.pending.delete(sending);
    sending.then(forget, forget);
    return sending;
  }

  /** Refuses new tasks and waits for those being sent. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.pending]);
  }

  private async send(task: TaskEnvelope): Promise<TaskStatus> {
    await this.store.record({ taskId: task.taskId, status: 'initiated', at: task.createdAt, task });
    await this.publisher.publish(task);
    await this.store.record({ taskId: task.taskId, status: 'queued', at: new Date() });
    return 'queued';
  }
}
