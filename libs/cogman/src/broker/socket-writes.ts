import type { Socket } from 'node:net';

const batched = new WeakSet<Socket>();

/**
 * Sends what is written to `socket` during one tick of the event loop in one system call.
 * amqplib writes every frame (a published message, an ack) to its socket on its own, and each
 * write is a system call: under load that was a fifth of a producer's CPU. The socket is corked
 * at the first write of a tick and uncorked once the tick's callbacks and promise reactions have
 * run, so Node sends the frames gathered meanwhile together (`writev`). Nothing waits longer than
 * the tick it was written in. Applying it twice to one socket changes nothing.
 */
export function batchSocketWrites(socket: Socket): void {
  if (batched.has(socket)) return;
  batched.add(socket);
  const write = socket.write.bind(socket);
  let corked = false;
  const uncork = () => {
    corked = false;
    socket.uncork();
  };
  socket.write = ((...args: Parameters<Socket['write']>) => {
    if (!corked) {
      corked = true;
      socket.cork();
      process.nextTick(uncork);
    }
    return write(...args);
  }) as Socket['write'];
}
