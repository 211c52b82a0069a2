import { Inject, Injectable } from '@nestjs/common';
import type { ConfirmChannel, GetMessage, Options } from 'amqplib';
import { createHash } from 'node:crypto';
import { BrokerConnection } from './broker-connection';
import { PUBLISHER_CONNECTION } from './broker.tokens';
import { TaskTopology } from './task-topology';
import { DEAD_LETTER_HEADERS } from './task.publisher';

/** Most messages one read, redrive or discard goes through: each call is a bounded batch. */
export const DEAD_LETTER_BATCH_MAX = 500;

/**
 * Reads after which a message is put back as a new one. A quorum queue counts each return of a
 * message as a delivery (before RabbitMQ 4.3) and drops it past its delivery limit (20 by
 * default from 4.0, and Cogman's dead-letter queue has no target of its own), so reading the
 * queue again and again must not use a message's deliveries up.
 */
export const READS_BEFORE_RENEWAL = 5;

/** A message of the dead-letter queue, as read (it stays in the queue). */
export interface DeadLetter {
  /** Identifies the message within the queue (a digest of its id, dead-letter time and body). */
  key: string;
  taskId: string | null;
  taskName: string | null;
  reason: string | null;
  detail: string | null;
  /** The queue it was dead-lettered from. */
  queue: string | null;
  deadLetteredAt: string | null;
  contentType: string | null;
  content: Buffer;
  /** Its headers, without Cogman's dead-letter ones. */
  headers: Record<string, unknown>;
  properties: GetMessage['properties'];
}

/** What to do with one message taken from the queue. */
export type DeadLetterVerdict = 'done' | 'keep';

/**
 * Reads and empties the dead-letter queue in bounded batches, on a channel of its own: messages
 * are taken with `basic.get`, those handled are acknowledged, and closing the channel puts the
 * others back where they were (AMQP has no peek: reading is taking and giving back).
 */
@Injectable()
export class DeadLetterQueue {
  constructor(
    @Inject(PUBLISHER_CONNECTION) private readonly connection: BrokerConnection,
    private readonly topology: TaskTopology,
  ) {}

  /** Messages in the queue now (null if the broker could not tell). */
  async size(): Promise<number | null> {
    const [check] = await this.connection.checkQueues([this.topology.deadLetter]);
    return check.error === undefined ? check.messages : null;
  }

  /** The first `limit` messages, left in the queue. */
  async peek(limit: number): Promise<DeadLetter[]> {
    const channel = await this.connection.openChannel();
    try {
      const letters: DeadLetter[] = [];
      const renewed: GetMessage[] = [];
      for (let i = 0; i < Math.min(limit, DEAD_LETTER_BATCH_MAX); i++) {
        const message = await channel.get(this.topology.deadLetter, { noAck: false });
        if (message === false) break;
        letters.push(deadLetterOf(message));
        if (this.renew(channel, message)) renewed.push(message);
      }
      await this.settleRenewed(channel, renewed);
      return letters;
    } finally {
      // Gives back what was read (and not renewed), where it was.
      await channel.close().catch(() => {});
    }
  }

  /**
   * Goes through at most `limit` messages from the head of the queue: `handle` decides for each
   * (given the channel, to publish on it); those it reports `done` are acknowledged once its
   * publishes are confirmed, the others go back. Resolves with the number handled.
   */
  async drain(
    limit: number,
    handle: (letter: DeadLetter, channel: ConfirmChannel) => Promise<DeadLetterVerdict>,
  ): Promise<{ handled: number; seen: number }> {
    const channel = await this.connection.openChannel();
    const done: GetMessage[] = [];
    const renewed: GetMessage[] = [];
    let seen = 0;
    try {
      for (; seen < Math.min(limit, DEAD_LETTER_BATCH_MAX); seen++) {
        const message = await channel.get(this.topology.deadLetter, { noAck: false });
        if (message === false) break;
        if ((await handle(deadLetterOf(message), channel)) === 'done') done.push(message);
        else if (this.renew(channel, message)) renewed.push(message);
      }
      await channel.waitForConfirms();
      for (const message of done) channel.ack(message);
      await this.settleRenewed(channel, renewed);
      return { handled: done.length, seen };
    } finally {
      await channel.close().catch(() => {});
    }
  }

  /**
   * Puts a message read `READS_BEFORE_RENEWAL` times back at the tail of the queue as a new one
   * (its deliveries counted from zero again); true if it did. The original is acknowledged once
   * the copy is confirmed (`settleRenewed`).
   */
  private renew(channel: ConfirmChannel, message: GetMessage): boolean {
    const headers = (message.properties.headers ?? {}) as Record<string, unknown>;
    const count = headers['x-delivery-count'];
    if (typeof count !== 'number' || count < READS_BEFORE_RENEWAL) return false;
    const { 'x-delivery-count': _count, ...kept } = headers;
    const { properties } = message;
    channel.publish('', this.topology.deadLetter, message.content, {
      contentType: properties.contentType as string | undefined,
      contentEncoding: properties.contentEncoding as string | undefined,
      messageId: properties.messageId as string | undefined,
      timestamp: properties.timestamp as number | undefined,
      persistent: true,
      headers: kept,
    });
    return true;
  }

  private async settleRenewed(channel: ConfirmChannel, renewed: GetMessage[]): Promise<void> {
    if (renewed.length === 0) return;
    await channel.waitForConfirms();
    for (const message of renewed) channel.ack(message);
  }

  /** Publishes a dead letter's message, as it was before, to a queue (on the drain's channel). */
  republish(channel: ConfirmChannel, letter: DeadLetter, queue: string): void {
    const { properties } = letter;
    const options: Options.Publish = {
      contentType: properties.contentType as string | undefined,
      contentEncoding: properties.contentEncoding as string | undefined,
      messageId: properties.messageId as string | undefined,
      timestamp: properties.timestamp as number | undefined,
      priority: properties.priority as number | undefined,
      persistent: true,
      headers: letter.headers,
    };
    channel.publish('', queue, letter.content, options);
  }

  /** The queue a dead letter goes back to: where it came from, if it is one of Cogman's. */
  originalQueue(letter: DeadLetter): string | null {
    const queues = [...this.topology.high, ...this.topology.low];
    return letter.queue !== null && queues.includes(letter.queue) ? letter.queue : null;
  }
}

const OWN_HEADERS = new Set<string>([
  ...Object.values(DEAD_LETTER_HEADERS),
  'x-death',
  'x-first-death-queue',
  'x-first-death-reason',
  'x-first-death-exchange',
  'x-last-death-queue',
  'x-last-death-reason',
  'x-last-death-exchange',
  'x-delivery-count',
]);

function deadLetterOf(message: GetMessage): DeadLetter {
  const all = (message.properties.headers ?? {}) as Record<string, unknown>;
  const text = (value: unknown) =>
    typeof value === 'string' && value !== ''
      ? value
      : Buffer.isBuffer(value)
        ? value.toString('utf8')
        : null;
  const headers: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(all))
    if (!OWN_HEADERS.has(name)) headers[name] = value;
  // A quorum queue dead-letters a message itself (delivery limit): x-death says from where.
  const death = Array.isArray(all['x-death'])
    ? (all['x-death'][0] as Record<string, unknown>)
    : null;
  const taskId = text(all.TaskID) ?? text(message.properties.messageId);
  const at = text(all[DEAD_LETTER_HEADERS.at]);
  return {
    key: createHash('sha256')
      .update(`${taskId ?? ''}\n${at ?? ''}\n`)
      .update(message.content)
      .digest('base64url')
      .slice(0, 22),
    taskId,
    taskName: text(all.TaskName),
    reason: text(all[DEAD_LETTER_HEADERS.reason]) ?? text(death?.reason),
    detail: text(all[DEAD_LETTER_HEADERS.detail]),
    queue: text(all[DEAD_LETTER_HEADERS.queue]) ?? text(death?.queue),
    deadLetteredAt: at,
    contentType: text(message.properties.contentType),
    content: message.content,
    headers,
    properties: message.properties,
  };
}
