import type { Channel, Message } from 'amqplib';
import { ChannelAcks } from './channel-acks';

const message = (deliveryTag: number) => ({ fields: { deliveryTag } }) as Message;
const tick = () => new Promise((resolve) => process.nextTick(resolve));

function fakeChannel() {
  const sent: string[] = [];
  const channel = {
    ack: (msg: Message, multiple: boolean) =>
      sent.push(`ack ${msg.fields.deliveryTag}${multiple ? ' and all before' : ''}`),
    nack: (msg: Message) => sent.push(`requeue ${msg.fields.deliveryTag}`),
  } as unknown as Channel;
  return { channel, sent };
}

describe('ChannelAcks', () => {
  it('acks a run from the oldest delivery at once, and the rest one by one, in the same tick', async () => {
    const { channel, sent } = fakeChannel();
    const acks = new ChannelAcks(channel);
    for (let tag = 1; tag <= 6; tag++) acks.received(message(tag));
    for (const tag of [2, 1, 3, 5]) acks.ack(message(tag));
    expect(sent).toEqual([]);
    await tick();
    expect(sent).toEqual(['ack 3 and all before', 'ack 5']);

    acks.ack(message(4));
    acks.ack(message(6));
    await tick();
    expect(sent.slice(2)).toEqual(['ack 6 and all before']);
  });

  it('requeues at once, and never covers a requeued delivery with a later multiple ack', async () => {
    const { channel, sent } = fakeChannel();
    const acks = new ChannelAcks(channel);
    for (let tag = 1; tag <= 3; tag++) acks.received(message(tag));
    acks.requeue(message(1));
    expect(sent).toEqual(['requeue 1']);
    acks.ack(message(2));
    acks.ack(message(3));
    await tick();
    // Tag 1 is settled already; "3 and all before" only covers 2 and 3 among the unacknowledged.
    expect(sent).toEqual(['requeue 1', 'ack 3 and all before']);
  });

  it('does not throw when the channel has closed', async () => {
    const acks = new ChannelAcks({
      ack: () => {
        throw new Error('Channel closed');
      },
    } as unknown as Channel);
    acks.received(message(1));
    acks.ack(message(1));
    await expect(tick()).resolves.toBeUndefined();
  });
});
