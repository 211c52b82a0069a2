import type { Channel, Message } from 'amqplib';

/**
 * Acknowledges the deliveries of one channel. Acks made in the same tick of the event loop that
 * run on from the oldest unacknowledged delivery go as one `multiple` ack; the others go one by
 * one, in that same tick. No ack waits for another delivery, so no prefetch slot is held longer.
 */
export class ChannelAcks {
  /** Delivery tags not yet acknowledged, oldest first (the broker numbers them in order). */
  private readonly outstanding: number[] = [];
  private readonly toAck = new Set<number>();
  private flushing = false;

  constructor(private readonly channel: Channel) {}

  received(msg: Message): void {
    this.outstanding.push(msg.fields.deliveryTag);
  }

  ack(msg: Message): void {
    this.toAck.add(msg.fields.deliveryTag);
    if (this.flushing) return;
    this.flushing = true;
    process.nextTick(() => this.flush());
  }

  /** Hands a delivery back to the broker (at once). */
  requeue(msg: Message): void {
    this.forget(msg.fields.deliveryTag);
    this.channel.nack(msg, false, true);
  }

  private flush(): void {
    this.flushing = false;
    let upTo: number | undefined;
    while (this.outstanding.length > 0 && this.toAck.has(this.outstanding[0])) {
      upTo = this.outstanding.shift();
      this.toAck.delete(upTo!);
    }
    try {
      if (upTo !== undefined) this.channel.ack(tagged(upTo), true);
      for (const tag of this.toAck) {
        this.forget(tag);
        this.channel.ack(tagged(tag), false);
      }
    } catch {
      // The channel closed: the broker redelivers what was not acknowledged.
    }
    this.toAck.clear();
  }

  private forget(tag: number): void {
    const index = this.outstanding.indexOf(tag);
    if (index >= 0) this.outstanding.splice(index, 1);
  }
}

/** What amqplib's ack needs of a message: its delivery tag. */
function tagged(deliveryTag: number): Message {
  return { fields: { deliveryTag } } as Message;
}
