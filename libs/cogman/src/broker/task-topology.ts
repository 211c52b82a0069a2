import { Inject, Injectable } from '@nestjs/common';
import type { Channel } from 'amqplib';
import { RESOLVED_OPTIONS, type ResolvedCogmanOptions } from '../config';
import type { TaskPriority } from '../task';

/**
 * Queue names and declarations. They match the Go Cogman library (`high_priority_queue_<i>`
 * with `x-queue-mode: default`, `low_priority_queue_<i>` lazy, durable, on the default
 * exchange), so Go producers and these workers share queues; a namespace prefixes them.
 */
@Injectable()
export class TaskTopology {
  readonly high: readonly string[];
  readonly low: readonly string[];
  /** Where messages that cannot be run go, with the reason in their headers. */
  readonly deadLetter: string;
  private readonly mode = new Map<string, 'default' | 'lazy'>();

  constructor(@Inject(RESOLVED_OPTIONS) options: ResolvedCogmanOptions) {
    const prefix = options.namespace ? `${options.namespace}.` : '';
    const names = (kind: string, count: number) =>
      Array.from({ length: count }, (_, i) => `${prefix}${kind}_priority_queue_${i}`);
    this.high = names('high', options.highPriorityQueueCount);
    this.low = names('low', options.lowPriorityQueueCount);
    this.deadLetter = `${prefix}cogman_dead_letter_queue`;
    for (const queue of this.high) this.mode.set(queue, 'default');
    for (const queue of [...this.low, this.deadLetter]) this.mode.set(queue, 'lazy');
  }

  queues(priority: TaskPriority): readonly string[] {
    return priority === 'high' ? this.high : this.low;
  }

  all(): string[] {
    return [...this.high, ...this.low, this.deadLetter];
  }

  /** Declares the given queues (idempotent when they exist with the same arguments). */
  async assert(channel: Channel, queues: readonly string[]): Promise<void> {
    for (const queue of queues) {
      await channel.assertQueue(queue, {
        durable: true,
        exclusive: false,
        autoDelete: false,
        arguments: { 'x-queue-mode': this.mode.get(queue) ?? 'default' },
      });
    }
  }
}
