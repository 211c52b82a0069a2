import { Inject, Injectable, Optional } from '@nestjs/common';
import type { ChannelWrapper } from 'amqp-connection-manager';
import type { Channel, ConsumeMessage } from 'amqplib';
import { PUBLISHER_CONNECTION, RESOLVED_OPTIONS } from '../cogman.constants';
import type { ResolvedCogmanOptions } from '../config';
import { TaskPublishError } from '../errors';
import { CogmanMetrics } from '../metrics/cogman.metrics';
import { toMessage, type DeadLetterReason, type TaskEnvelope } from '../task';
import type { BrokerConnection } from './broker-connection';
import { TaskTopology } from './task-topology';

/** Headers a dead-lettered message gets, beside its own. */
export const DEAD_LETTER_HEADERS = {
  reason: 'x-cogman-dead-letter-reason',
  detail: 'x-cogman-dead-letter-detail',
  queue: 'x-cogman-dead-letter-queue',
  at: 'x-cogman-dead-lettered-at',
} as const;

/**
 * Publishes task messages on one long-lived confirm channel: many messages in flight, each
 * promise settling on the broker's confirm. The topology is declared in the channel's setup,
 * that is once per connection (amqp-connection-manager re-runs it after a reconnect).
 */
@Injectable()
export class TaskPublisher {
  private channel?: ChannelWrapper;
  private readonly ready: Promise<ChannelWrapper>;
  private resolveReady!: (channel: ChannelWrapper) => void;
  private rejectReady!: (error: unknown) => void;
  private readonly cursor = { high: 0, low: 0 };
  /** Whether the channel is set up on a live connection. */
  private up = false;
  private readonly reconnectListeners: (() => void)[] = [];

  constructor(
    @Inject(PUBLISHER_CONNECTION) private readonly connection: BrokerConnection,
    private readonly topology: TaskTopology,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedCogmanOptions,
    @Optional() @Inject(CogmanMetrics) private readonly metrics: CogmanMetrics | null = null,
  ) {
    this.ready = new Promise((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    // Tasks sent before the application has started wait; a failed start rejects them.
    this.ready.catch(() => {});
  }

  /** Opens the channel once the connection is up (see CogmanLifecycle). */
  async open(): Promise<void> {
    const channel = this.connection.createChannel({
      name: 'cogman-publish',
      confirm: true,
      setup: (ch: Channel) => this.topology.assert(ch, this.topology.all()),
    });
    this.connection.onDisconnect(() => (this.up = false));
    channel.on('connect', () => {
      this.up = true;
      for (const listener of this.reconnectListeners) listener();
    });
    await channel.waitForConnect();
    this.up = true;
    this.channel = channel;
    this.resolveReady(channel);
  }

  /** Whether messages can be published now (false while the broker is unreachable). */
  get connected(): boolean {
    return this.up && this.connection.connected;
  }

  /** Calls `listener` each time the channel is back after the broker was unreachable. */
  onReconnect(listener: () => void): void {
    this.reconnectListeners.push(listener);
  }

  /** Makes waiting and later publishes fail with the reason the application did not start. */
  fail(error: unknown): void {
    this.rejectReady(error);
  }

  /** Resolves once the broker has confirmed the message. */
  async publish(task: TaskEnvelope): Promise<void> {
    const channel = this.channel ?? (await this.ready);
    const queues = this.topology.queues(task.priority);
    const queue = queues[this.cursor[task.priority]++ % queues.length];
    const { content, options } = toMessage(task);
    const began = performance.now();
    try {
      await channel.publish('', queue, content, {
        ...options,
        timeout: this.options.requestTimeout,
      });
      this.metrics?.published(task.priority, (performance.now() - began) / 1000);
    } catch (error) {
      throw new TaskPublishError(task.taskId, describe(error, this.options.requestTimeout), {
        cause: error,
      });
    }
  }

  /** Copies a message to the dead-letter queue with the reason; resolves once confirmed. */
  async deadLetter(
    msg: ConsumeMessage,
    queue: string,
    reason: DeadLetterReason,
    detail: string,
  ): Promise<void> {
    const { properties } = msg;
    const channel = this.channel ?? (await this.ready);
    await channel.publish('', this.topology.deadLetter, msg.content, {
      contentType: properties.contentType as string | undefined,
      messageId: properties.messageId as string | undefined,
      timestamp: properties.timestamp as number | undefined,
      persistent: true,
      headers: {
        ...properties.headers,
        [DEAD_LETTER_HEADERS.reason]: reason,
        [DEAD_LETTER_HEADERS.detail]: detail,
        [DEAD_LETTER_HEADERS.queue]: queue,
        [DEAD_LETTER_HEADERS.at]: new Date().toISOString(),
      },
      timeout: this.options.requestTimeout,
    });
  }
}

function describe(error: unknown, timeout: number): string {
  const text = error instanceof Error ? error.message : String(error);
  return text === 'timeout'
    ? `no confirm from the broker within ${timeout} ms (requestTimeout)`
    : text;
}
