import { once } from 'node:events';
import { createServer, Socket, type AddressInfo, type Server } from 'node:net';
import { batchSocketWrites } from './socket-writes';

/** A loopback server that keeps everything it receives. */
async function listen(): Promise<{ server: Server; received: () => Buffer; port: number }> {
  const chunks: Buffer[] = [];
  const server = createServer((peer) => peer.on('data', (chunk: Buffer) => chunks.push(chunk)));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return { server, port, received: () => Buffer.concat(chunks) };
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

async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe('batchSocketWrites', () => {
  let server: Server;
  let socket: Socket;
  let received: () => Buffer;

  beforeEach(async () => {
    const listening = await listen();
    server = listening.server;
    received = listening.received;
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
    await until(() => received().length === Buffer.concat(sent).length);
    expect(received().toString()).toBe(Buffer.concat(sent).toString());
    expect(counts).toEqual({ writes: 1, chunks: 100 });
  });

  it('sends each tick on its own, without waiting for the next one', async () => {
    batchSocketWrites(socket);
    batchSocketWrites(socket); // a second time changes nothing
    const counts = countWrites(socket);
    for (const frame of frames(0, 10)) socket.write(frame);
    await until(() => received().toString().endsWith('frame 9;'));
    expect(counts).toEqual({ writes: 1, chunks: 10 });
    for (const frame of frames(10, 5)) socket.write(frame);
    await until(() => received().toString().endsWith('frame 14;'));
    expect(counts).toEqual({ writes: 2, chunks: 15 });
  });

  it('is what makes the difference: an unbatched socket writes each frame on its own', async () => {
    const counts = countWrites(socket);
    for (const frame of frames(0, 10)) socket.write(frame);
    await until(() => received().toString().endsWith('frame 9;'));
    expect(counts).toEqual({ writes: 10, chunks: 10 });
  });
});
