import { Inject, Injectable } from '@nestjs/common';
import { RESOLVED_OPTIONS, type ResolvedCogmanOptions } from '../config';
import type { TaskPriority } from '../task';

/** What a queue is for: its priority's tasks, or the messages that cannot be run. */
export type QueueKind = TaskPriority | 'dead-letter';

/** One queue as Cogman declares it when it does not exist yet. */
export interface QueueDeclaration {
  name: string;
  kind: QueueKind;
  arguments: Record<string, string | number>;
}

/** What decides a queue's arguments. */
export interface QueueArgumentsInput {
  kind: QueueKind;
  queueType: 'classic' | 'quorum';
  /** The broker's version (`server-properties.version`), if it said. */
  serverVersion: string | undefined;
  deliveryLimit: number;
  /** Where a quorum queue dead-letters what it drops. */
  deadLetter: string;
}

/**
 * How many times `deliveryLimit` a quorum queue's own delivery limit is: room for the returns a
 * healthy message takes while read ahead by workers that a poison message kills.
 */
export const QUORUM_DELIVERY_LIMIT_FACTOR = 10;

/**
 * A queue's arguments, for the broker at hand:
 * - classic queues, on a broker before 3.12, have exactly the arguments of the Go Cogman library
 *   (`x-queue-mode`: `default` for high priority, `lazy` for low priority and dead letters), so
 *   that a Go fleet's declarations of the same queues match. From 3.12 every classic queue stores
 *   messages as lazy ones did, and RabbitMQ 4.3 refuses the argument, so it is left out, and the
 *   type is said (`x-queue-type: classic`: a vhost may default to quorum);
 * - quorum queues are replicated; their dead-letter target is Cogman's dead-letter queue, with
 *   at-least-once dead-lettering (which needs `x-overflow: reject-publish`), and a delivery
 *   limit of `QUORUM_DELIVERY_LIMIT_FACTOR` times `deliveryLimit`. Cogman dead-letters a poison
 *   message itself after `deliveryLimit` started deliveries, recording why; the broker counts
 *   every return, also of messages a dying worker had read ahead and never started, so its
 *   limit only stands behind Cogman's (a message whose record cannot be read, say).
 */
export function queueArguments(input: QueueArgumentsInput): Record<string, string | number> {
  if (input.queueType === 'quorum') {
    const args: Record<string, string | number> = { 'x-queue-type': 'quorum' };
    if (input.kind !== 'dead-letter') {
      args['x-dead-letter-exchange'] = '';
      args['x-dead-letter-routing-key'] = input.deadLetter;
      args['x-dead-letter-strategy'] = 'at-least-once';
      args['x-overflow'] = 'reject-publish';
      args['x-delivery-limit'] = input.deliveryLimit * QUORUM_DELIVERY_LIMIT_FACTOR;
    }
    return args;
  }
  if (needsQueueMode(input.serverVersion)) {
    return { 'x-queue-mode': input.kind === 'high' ? 'default' : 'lazy' };
  }
  return { 'x-queue-type': 'classic' };
}

/** Whether a broker of this version takes (and a Go fleet on it declares) `x-queue-mode`. */
export function needsQueueMode(serverVersion: string | undefined): boolean {
  const match = /^(\d+)\.(\d+)/.exec(serverVersion ?? '');
  // A broker that does not say is taken for a current one.
  if (!match) return false;
  const [major, minor] = [Number(match[1]), Number(match[2])];
  return major < 3 || (major === 3 && minor < 12);
}

/**
 * Queue names and declarations. The names match the Go Cogman library (`high_priority_queue_<i>`,
 * `low_priority_queue_<i>`, durable, on the default exchange), so Go producers and these workers
 * share queues; a namespace prefixes them. A queue that exists is used as it is (an operator's
 * quorum queue, a Go fleet's lazy queue): Cogman declares only the queues that are missing.
 */
@Injectable()
export class TaskTopology {
  readonly high: readonly string[];
  readonly low: readonly string[];
  /** Where messages that cannot be run go, with the reason in their headers. */
  readonly deadLetter: string;
  private readonly kinds = new Map<string, QueueKind>();

  constructor(@Inject(RESOLVED_OPTIONS) private readonly options: ResolvedCogmanOptions) {
    const prefix = options.namespace ? `${options.namespace}.` : '';
    const names = (kind: string, count: number) =>
      Array.from({ length: count }, (_, i) => `${prefix}${kind}_priority_queue_${i}`);
    this.high = names('high', options.highPriorityQueueCount);
    this.low = names('low', options.lowPriorityQueueCount);
    this.deadLetter = `${prefix}cogman_dead_letter_queue`;
    for (const queue of this.high) this.kinds.set(queue, 'high');
    for (const queue of this.low) this.kinds.set(queue, 'low');
    this.kinds.set(this.deadLetter, 'dead-letter');
  }

  queues(priority: TaskPriority): readonly string[] {
    return priority === 'high' ? this.high : this.low;
  }

  all(): string[] {
    return [...this.high, ...this.low, this.deadLetter];
  }

  /** How the given queues are declared on a broker of `serverVersion` (where missing). */
  declarations(queues: readonly string[], serverVersion: string | undefined): QueueDeclaration[] {
    return queues.map((name) => {
      const kind = this.kinds.get(name) ?? 'low';
      return {
        name,
        kind,
        arguments: queueArguments({
          kind,
          queueType: this.options.queueType,
          serverVersion,
          deliveryLimit: this.options.deliveryLimit,
          deadLetter: this.deadLetter,
        }),
      };
    });
  }
}
