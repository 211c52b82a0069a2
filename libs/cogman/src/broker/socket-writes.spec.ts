import { EventEmitter, once } from 'node:events';
import { createServer, Socket, type AddressInfo, type Server } from 'node:net';
import { batchSocketWrites } from './socket-writes';

/** A loopback server that keeps what it receives, and says when it has received `text`. */
async function listen() {
  let received = '';
  const arrived = new EventEmitter();
  const server = createServer((peer) =>
    peer.on('data', (chunk: Buffer) => {
      received += chunk.toString();
      arrived.emit('data');
    }),
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const receivedAll = async (text: string) => {
    while (received.length < text.length) await once(arrived, 'data');
    return received;
  };
  return { server, port, receivedAll };
}

/** Counts the writes the socket hands to the operating system (one per `_write` / `_writev`). */
function countWrites(socket: Socket): { writes: number; chunks: number } {
  const counts = { writes: 0, chunks: 0 };
  const write = socket._write.bind(socket);
  const writev = socket._writev!.bind(socket);
  socket._write = (chunk, encoding, callback) => {
    counts.writes++;
    counts.chunks++;
    write(chunk, encoding, callback);
  };
  socket._writev = (chunks, callback) => {
    counts.writes++;
    counts.chunks += chunks.length;
    writev(chunks, callback);
  };
  return counts;
}

describe('batchSocketWrites', () => {
  let server: Server;
  let socket: Socket;
  let receivedAll: (text: string) => Promise<string>;

  beforeEach(async () => {
    const listening = await listen();
    server = listening.server;
    receivedAll = listening.receivedAll;
    socket = new Socket();
    socket.connect(listening.port, '127.0.0.1');
    await once(socket, 'connect');
  });

  afterEach(async () => {
    socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  const frames = (from: number, count: number) =>
    Array.from({ length: count }, (_, i) => Buffer.from(`frame ${from + i};`));

  it('sends the writes of one tick, promise reactions included, in one system call, in order', async () => {
    batchSocketWrites(socket);
    const counts = countWrites(socket);
    const sent = frames(0, 100);
    for (const frame of sent.slice(0, 60)) socket.write(frame);
    void Promise.resolve().then(() => {
      for (const frame of sent.slice(60)) socket.write(frame);
    });
    const text = Buffer.concat(sent).toString();
    expect(await receivedAll(text)).toBe(text);
    expect(counts).toEqual({ writes: 1, chunks: 100 });
  });

  it('sends each tick on its own, without waiting for the next one', async () => {
    batchSocketWrites(socket);
    batchSocketWrites(socket); // a second time changes nothing
    const counts = countWrites(socket);
    for (const frame of frames(0, 10)) socket.write(frame);
    await receivedAll(Buffer.concat(frames(0, 10)).toString());
    expect(counts).toEqual({ writes: 1, chunks: 10 });
    for (const frame of frames(10, 5)) socket.write(frame);
    await receivedAll(Buffer.concat(frames(0, 15)).toString());
    expect(counts).toEqual({ writes: 2, chunks: 15 });
  });

  it('is what makes the difference: an unbatched socket writes each frame on its own', async () => {
    const counts = countWrites(socket);
    for (const frame of frames(0, 10)) socket.write(frame);
    await receivedAll(Buffer.concat(frames(0, 10)).toString());
    expect(counts).toEqual({ writes: 10, chunks: 10 });
  });
});
