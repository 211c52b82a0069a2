import { Injectable } from '@nestjs/common';
import type { ConsumeMessage } from 'amqplib';
import type { TaskBroker } from '../broker/task-broker';
import { TaskTopology } from '../broker/task-topology';
import { toMessage, type DeadLetterReason, type TaskEnvelope, type TaskPriority } from '../task';

/** A message waiting in one of the in-memory queues. */
export interface QueuedMessage {
  queue: string;
  priority: TaskPriority;
  msg: ConsumeMessage;
}

/** A message the in-memory broker moved to its dead-letter queue. */
export interface DeadLetter {
  queue: string;
  reason: DeadLetterReason;
  detail: string;
  msg: ConsumeMessage;
}

/**
 * The broker of Cogman's testing kit: messages wait in memory, in the queues their priority
 * would take, until the test runs them. Every publish is confirmed at once.
 */
@Injectable()
export class InMemoryTaskBroker implements TaskBroker {
  readonly connected = true;
  /** Every attempt published, in order. */
  readonly published: TaskEnvelope[] = [];
  readonly deadLetters: DeadLetter[] = [];
  private readonly waiting: QueuedMessage[] = [];
  private readonly cursor = { high: 0, low: 0 };
  private deliveryTag = 0;
  /** Runs after each publish, before it is confirmed (the kit's `runOnSend`). */
  afterPublish?: () => Promise<void>;

  constructor(private readonly topology: TaskTopology) {}

  async publish(task: TaskEnvelope): Promise<void> {
    const queues = this.topology.queues(task.priority);
    const queue = queues[this.cursor[task.priority]++ % queues.length];
    const { content, options } = toMessage(task);
    this.published.push(task);
    this.waiting.push({
      queue,
      priority: task.priority,
      msg: {
        content,
        fields: {
          deliveryTag: ++this.deliveryTag,
          redelivered: false,
          exchange: '',
          routingKey: queue,
          consumerTag: 'cogman-testing',
        },
        properties: { ...options, headers: options.headers as Record<string, unknown> },
      } as unknown as ConsumeMessage,
    });
    await this.afterPublish?.();
  }

  deadLetter(
    msg: ConsumeMessage,
    queue: string,
    reason: DeadLetterReason,
    detail: string,
  ): Promise<void> {
    this.deadLetters.push({ msg, queue, reason, detail });
    return Promise.resolve();
  }

  readonly started = true;

  untilStarted(): Promise<void> {
    return Promise.resolve();
  }

  handBack(
    msg: ConsumeMessage,
    queue: string,
    { headers }: { headers?: Record<string, unknown> } = {},
  ): Promise<void> {
    const priority = this.topology.high.includes(queue) ? 'high' : 'low';
    if (headers) {
      const properties = { ...msg.properties, headers: { ...msg.properties.headers, ...headers } };
      msg = { ...msg, properties };
    }
    this.waiting.push({ queue, priority, msg });
    return Promise.resolve();
  }

  onReconnect(): void {
    // Always connected.
  }

  /** Messages waiting, high priority first. */
  get size(): number {
    return this.waiting.length;
  }

  /**
   * The next message to deliver: the oldest of high priority, else the oldest of low; none of a
   * priority in `paused`.
   */
  take(paused: ReadonlySet<TaskPriority> = new Set()): QueuedMessage | undefined {
    const high = paused.has('high')
      ? -1
      : this.waiting.findIndex((message) => message.priority === 'high');
    const index =
      high >= 0 || paused.has('low')
        ? high
        : this.waiting.findIndex((message) => message.priority === 'low');
    return index >= 0 ? this.waiting.splice(index, 1)[0] : undefined;
  }

  /** The messages waiting now, in the order they would run. */
  peek(): QueuedMessage[] {
    return [
      ...this.waiting.filter((message) => message.priority === 'high'),
      ...this.waiting.filter((message) => message.priority === 'low'),
    ];
  }

  /** Forgets what was published and dead-lettered (messages waiting stay). */
  clearHistory(): void {
    this.published.length = 0;
    this.deadLetters.length = 0;
  }
}
