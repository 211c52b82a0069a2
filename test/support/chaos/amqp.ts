import { connect, type ChannelModel } from 'amqplib';
import { deferred } from '../wait';

/** Resolves with the first 'error' or 'close' of an amqplib connection (the error, if any). */
export function connectionClosed(connection: ChannelModel): Promise<Error | undefined> {
  const done = deferred<Error | undefined>();
  connection.on('error', (error: Error) => done.resolve(error));
  connection.on('close', (error?: Error) => done.resolve(error));
  return done.promise;
}

/**
 * The plain amqplib connections a chaos spec opens to its brokers, closed together (in
 * `afterEach`). A connection whose broker is killed emits 'error', which would otherwise crash
 * the test process: each gets a listener that ignores it.
 */
export class AmqpConnections {
  private readonly opened: ChannelModel[] = [];

  async open(uri: string): Promise<ChannelModel> {
    const connection = await connect(uri);
    connection.on('error', () => {});
    this.opened.push(connection);
    return connection;
  }

  /** Closes every connection opened so far; those already lost are skipped. */
  async closeAll(): Promise<void> {
    await Promise.allSettled(this.opened.splice(0).map((connection) => connection.close()));
  }
}
