import { Inject, Injectable, Logger } from '@nestjs/common';
import { TaskPublisher } from '../broker/task.publisher';
import { RESOLVED_OPTIONS } from '../cogman.constants';
import type { ResolvedCogmanOptions } from '../config';
import { OfflineBufferFullError } from '../errors';
import { TaskLog } from '../store/task-log';
import type { TaskEnvelope } from '../task';

/** Messages published at once when the buffer drains; the broker confirms them together. */
const WINDOW = 200;

/**
 * Tasks accepted while the broker is unreachable (`sendTask` resolved them `initiated`), in the
 * order they came, published as soon as the broker is back. Bounded by `offlineBufferSize`.
 */
@Injectable()
export class OfflineTaskBuffer {
  private readonly logger = new Logger('Cogman:Client');
  private readonly tasks: TaskEnvelope[] = [];
  private draining?: Promise<void>;

  constructor(
    private readonly publisher: TaskPublisher,
    private readonly log: TaskLog,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedCogmanOptions,
  ) {
    publisher.onReconnect(() => void this.drain());
  }

  get size(): number {
    return this.tasks.length;
  }

  /** Keeps a task until the broker is back; rejects when the buffer is full. */
  add(task: TaskEnvelope): void {
    if (this.tasks.length >= this.options.offlineBufferSize) {
      throw new OfflineBufferFullError(task.taskId, this.options.offlineBufferSize);
    }
    if (this.tasks.length === 0) {
      this.logger.warn('RabbitMQ is unreachable: tasks are kept in memory until it returns');
    }
    this.tasks.push(task);
  }

  /** Publishes what waits, in order, while the broker is there; one drain at a time. */
  drain(): Promise<void> {
    this.draining ??= this.publishAll().finally(() => (this.draining = undefined));
    return this.draining;
  }

  /** Waits for a drain under way; says how many tasks are still waiting. */
  async close(): Promise<number> {
    await this.draining;
    if (this.tasks.length > 0) {
      this.logger.error(
        `${this.tasks.length} task(s) accepted while RabbitMQ was unreachable were never published`,
      );
    }
    return this.tasks.length;
  }

  private async publishAll(): Promise<void> {
    let published = 0;
    while (this.tasks.length > 0 && this.publisher.connected) {
      const window = this.tasks.splice(0, WINDOW);
      const results = await Promise.allSettled(window.map((task) => this.publisher.publish(task)));
      const failed = window.filter((_, i) => results[i].status === 'rejected');
      // Put back what did not go, ahead of the rest, in order; try again on the next reconnect.
      this.tasks.unshift(...failed);
      const sent = window.filter((_, i) => results[i].status === 'fulfilled');
      published += sent.length;
      await Promise.all(
        sent.map((task) =>
          this.log.record(
            { taskId: task.taskId, status: 'queued', at: new Date() },
            { deferrable: true },
          ),
        ),
      );
      if (failed.length > 0) break;
    }
    if (published > 0) {
      this.logger.log(
        `Published ${published} task(s) accepted while RabbitMQ was unreachable${this.tasks.length ? `; ${this.tasks.length} still waiting` : ''}`,
      );
    }
  }
}
