import { Inject, Injectable, Optional } from '@nestjs/common';
import type { ConfirmChannel, ConsumeMessage, Options } from 'amqplib';
import { PUBLISHER_CONNECTION } from './broker.tokens';
import { RESOLVED_OPTIONS, type ResolvedCogmanOptions } from '../config';
import { ClientNotStartedError, TaskPublishError } from '../errors';
import { CogmanMetrics } from '../metrics/cogman.metrics';
import { toMessage, type DeadLetterReason, type TaskEnvelope } from '../task';
import type { BrokerConnection } from './broker-connection';
import type { TaskBroker } from './task-broker';
import { TaskTopology } from './task-topology';
import { within } from '../util/within';

/** Headers a dead-lettered message gets, beside its own. */
export const DEAD_LETTER_HEADERS = {
  reason: 'x-cogman-dead-letter-reason',
  detail: 'x-cogman-dead-letter-detail',
  queue: 'x-cogman-dead-letter-queue',
  at: 'x-cogman-dead-lettered-at',
} as const;

/** A message the broker has not confirmed yet. */
interface Unconfirmed {
  taskId: string;
  deadline: number;
  resolve: () => void;
  reject: (error: Error) => void;
}

/** How often messages past requestTimeout are looked for: one timer for all of them. */
const SWEEP_INTERVAL = 100;

/**
 * Publishes task messages on one long-lived confirm channel: many messages in flight, each
 * promise settling on the broker's confirm. The channel is kept up by amqp-connection-manager,
 * which runs the setup (declaring the topology: once per connection) after each reconnect;
 * messages go straight onto the amqplib channel of the current connection, since Cogman keeps
 * what waits for the broker itself (the offline buffer, the schedule).
 */
@Injectable()
export class TaskPublisher implements TaskBroker {
  /** The confirm channel of the current connection; undefined while the broker is unreachable. */
  private channel?: ConfirmChannel;
  private readonly ready: Promise<void>;
  private resolveReady!: () => void;
  private rejectReady!: (error: unknown) => void;
  /** Resolves when the application begins starting it (`open`). */
  private readonly opening: Promise<void>;
  private beginOpening!: () => void;
  private state: 'new' | 'opening' | 'open' = 'new';
  private readonly cursor = { high: 0, low: 0 };
  private readonly reconnectListeners: (() => void)[] = [];
  private readonly unconfirmed = new Set<Unconfirmed>();
  private sweeper?: NodeJS.Timeout;

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
    this.opening = new Promise((resolve) => (this.beginOpening = resolve));
  }

  get started(): boolean {
    return this.state === 'open';
  }

  /**
   * Resolves once started. Sent before the application starts Cogman, a task waits for that up
   * to requestTimeout (a script that never calls app.init() gets a clear error, not a task left
   * `initiated`), then for the start itself (up to connectionTimeout, or its failure).
   */
  async untilStarted(): Promise<void> {
    if (this.state === 'new') {
      const timeout = this.options.requestTimeout;
      await within(this.opening, timeout, () => {
        throw new ClientNotStartedError(timeout);
      });
    }
    await this.ready;
  }

  /** The application is starting Cogman: tasks sent meanwhile wait for it (see `untilStarted`). */
  starting(): void {
    if (this.state !== 'new') return;
    this.state = 'opening';
    this.beginOpening();
  }

  /** Opens the channel once the connection is up (see CogmanLifecycle). */
  async open(): Promise<void> {
    this.starting();
    const wrapper = this.connection.createChannel({
      name: 'cogman-publish',
      confirm: true,
      setup: async (channel: ConfirmChannel) => {
        await this.connection.ensureQueues((version) =>
          this.topology.declarations(this.topology.all(), version),
        );
        channel.once('close', () => {
          if (this.channel === channel) this.channel = undefined;
        });
        this.channel = channel;
      },
    });
    wrapper.on('connect', () => {
      for (const listener of this.reconnectListeners) listener();
    });
    await wrapper.waitForConnect();
    this.state = 'open';
    this.resolveReady();
  }

  /** Whether messages can be published now (false while the broker is unreachable). */
  get connected(): boolean {
    return this.channel !== undefined && this.connection.connected;
  }

  /** Calls `listener` each time the channel is back after the broker was unreachable. */
  onReconnect(listener: () => void): void {
    this.reconnectListeners.push(listener);
  }

  /** Makes waiting and later publishes fail with the reason the application did not start. */
  fail(error: unknown): void {
    this.starting();
    this.rejectReady(error);
  }

  /** Resolves once the broker has confirmed the message. */
  async publish(task: TaskEnvelope): Promise<void> {
    if (!this.channel) await this.ready;
    const queues = this.topology.queues(task.priority);
    const queue = queues[this.cursor[task.priority]++ % queues.length];
    const { content, options } = toMessage(task);
    const began = performance.now();
    await this.send(task.taskId, queue, content, options);
    this.metrics?.published(task.priority, (performance.now() - began) / 1000);
  }

  /** Rejects what still waits for a confirm (at shutdown). */
  close(): void {
    for (const message of [...this.unconfirmed]) {
      this.settle(message, new Error('the publisher was closed'));
    }
  }

  private send(
    taskId: string,
    queue: string,
    content: Buffer,
    options: Options.Publish,
  ): Promise<void> {
    const channel = this.channel;
    if (!channel) {
      return Promise.reject(new TaskPublishError(taskId, 'the broker is unreachable'));
    }
    return new Promise<void>((resolve, reject) => {
      const message: Unconfirmed = {
        taskId,
        deadline: Date.now() + this.options.requestTimeout,
        resolve,
        reject,
      };
      this.unconfirmed.add(message);
      this.sweep();
      try {
        channel.publish('', queue, content, options, (error) => this.settle(message, error));
      } catch (error) {
        this.settle(message, error);
      }
    });
  }

  private settle(message: Unconfirmed, error: unknown): void {
    if (!this.unconfirmed.delete(message)) return;
    if (!error) {
      message.resolve();
      return;
    }
    const text = error instanceof Error ? error.message : JSON.stringify(error);
    message.reject(new TaskPublishError(message.taskId, text, { cause: error }));
  }

  /** Fails the messages past requestTimeout; runs while some wait for a confirm. */
  private sweep(): void {
    if (this.sweeper) return;
    this.sweeper = setInterval(() => {
      const now = Date.now();
      for (const message of this.unconfirmed) {
        if (message.deadline <= now) {
          this.settle(
            message,
            new Error(
              `no confirm from the broker within ${this.options.requestTimeout} ms (requestTimeout)`,
            ),
          );
        }
      }
      if (this.unconfirmed.size === 0) {
        clearInterval(this.sweeper);
        this.sweeper = undefined;
      }
    }, SWEEP_INTERVAL);
    this.sweeper.unref();
  }

  /** Copies a message to the dead-letter queue with the reason; resolves once confirmed. */
  async deadLetter(
    msg: ConsumeMessage,
    queue: string,
    reason: DeadLetterReason,
    detail: string,
  ): Promise<void> {
    if (!this.channel) await this.ready;
    await this.send(messageIdOf(msg), this.topology.deadLetter, msg.content, {
      ...copiedProperties(msg),
      headers: {
        ...msg.properties.headers,
        [DEAD_LETTER_HEADERS.reason]: reason,
        [DEAD_LETTER_HEADERS.detail]: detail,
        [DEAD_LETTER_HEADERS.queue]: queue,
        [DEAD_LETTER_HEADERS.at]: new Date().toISOString(),
      },
    });
  }

  /**
   * Publishes a message again to its queue, as it came (plus `headers`, when given: a new
   * delivery); resolves once confirmed.
   */
  async handBack(
    msg: ConsumeMessage,
    queue: string,
    { headers }: { headers?: Record<string, unknown> } = {},
  ): Promise<void> {
    if (!this.channel) await this.ready;
    const properties = copiedProperties(msg);
    if (headers) properties.headers = { ...(msg.properties.headers ?? {}), ...headers };
    await this.send(messageIdOf(msg), queue, msg.content, properties);
  }
}

function messageIdOf(msg: ConsumeMessage): string {
  return String(msg.properties.messageId ?? 'without an id');
}

/** The properties of a message a copy keeps (its own delivery's are the broker's). */
function copiedProperties(msg: ConsumeMessage): Options.Publish {
  const { properties } = msg;
  return {
    contentType: properties.contentType as string | undefined,
    messageId: properties.messageId as string | undefined,
    timestamp: properties.timestamp as number | undefined,
    persistent: true,
    headers: properties.headers,
  };
}
