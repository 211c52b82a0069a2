import type { AmqpConnection } from '@golevelup/nestjs-rabbitmq';
import type { ConfirmChannel } from 'amqplib';
import type { Socket } from 'node:net';
import { BrokerConnection } from '../libs/cogman/src/broker/broker-connection';
import { resolveCogmanOptions } from '../libs/cogman/src/config';
import { AMQP_URI, REDIS_URI, uniqueNamespace } from './support/services';
import { waitFor } from './support/wait';

const MESSAGES = 50;

/**
 * The socket under the connection: golevelup's managed connection, amqp-connection-manager's
 * current amqplib connection, and amqplib's own `stream`.
 */
function socketOf(broker: BrokerConnection): Socket {
  const { amqp } = broker as unknown as { amqp: AmqpConnection };
  const connection = amqp.managedConnection.connection as unknown as {
    connection: { stream: Socket };
  };
  return connection.connection.stream;
}

/** Publishes MESSAGES messages in one tick; says how many writes reached the socket's handle. */
async function writesOfOneTick(broker: BrokerConnection, queue: string): Promise<number> {
  const socket = socketOf(broker);
  const channel = broker.createChannel({
    name: 'batching-test',
    confirm: true,
    setup: (ch: ConfirmChannel) => ch.assertQueue(queue, { autoDelete: true }),
  });
  await channel.waitForConnect();
  let writes = 0;
  const write = socket._write.bind(socket);
  const writev = socket._writev!.bind(socket);
  socket._write = (chunk, encoding, callback) => (writes++, write(chunk, encoding, callback));
  socket._writev = (chunks, callback) => (writes++, writev(chunks, callback));
  try {
    await Promise.all(
      Array.from({ length: MESSAGES }, (_, i) => channel.sendToQueue(queue, Buffer.from(`${i}`))),
    );
  } finally {
    socket._write = write;
    socket._writev = writev;
    await channel.close();
  }
  return writes;
}

describe('BrokerConnection', () => {
  let broker: BrokerConnection;

  beforeEach(async () => {
    const options = resolveCogmanOptions({ amqpUri: AMQP_URI, redisUri: REDIS_URI });
    broker = new BrokerConnection('batching-test', options);
    await broker.connect();
  });

  afterEach(() => broker.close());

  it('sends the frames of one tick together, and again after a reconnection', async () => {
    const queue = `${uniqueNamespace('batching')}.queue`;
    // 50 publishes are 50 writes unbatched (the socket-writes spec shows it); amqplib's own
    // channel buffer may hand them over in a few passes.
    expect(await writesOfOneTick(broker, queue)).toBeLessThanOrEqual(5);

    const before = socketOf(broker);
    const { amqp } = broker as unknown as { amqp: AmqpConnection };
    amqp.managedConnection.reconnect();
    await waitFor('a new connection', () => broker.connected && socketOf(broker) !== before, {
      timeout: 10_000,
    });
    expect(await writesOfOneTick(broker, queue)).toBeLessThanOrEqual(5);
  });
});
