import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';

/** Ports this process has handed out; never handed out twice. */
const handedOut = new Set<number>();

/**
 * The first port of the kernel's ephemeral range. Services get ports below it: the kernel never
 * picks those as the local port of an outgoing connection or for another program's `listen(0)`,
 * so a port stays free between the probe and the service binding it, and across a restart.
 */
function ephemeralStart(): number {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    return Number.isInteger(low) && low > 21_000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

const RANGE_START = 20_000;
const RANGE_END = ephemeralStart() - 1;

function canListen(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) =>
      // A host without IPv6 cannot collide on ::1.
      resolve(error.code === 'EADDRNOTAVAIL' || error.code === 'EAFNOSUPPORT'),
    );
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * A loopback port nothing listens on (probed on 127.0.0.1 and ::1), picked at random below the
 * ephemeral range and not handed out before by this process. Services that start on it still
 * check for EADDRINUSE and retry with new ports (another program may probe the same port).
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = RANGE_START + Math.floor(Math.random() * (RANGE_END - RANGE_START));
    if (handedOut.has(port)) continue;
    if ((await canListen(port, '127.0.0.1')) && (await canListen(port, '::1'))) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`No free port found between ${RANGE_START} and ${RANGE_END}`);
}

/** Resolves true once something accepts TCP connections on 127.0.0.1:`port`. */
export function isListening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Inodes of the sockets listening on `port` (any address), from /proc; null without /proc. */
function listeningInodes(port: number): Set<string> | null {
  const inodes = new Set<string>();
  let found = false;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
      found = true;
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      // local_address is ADDR:PORT in hex; state 0A is LISTEN.
      if (
        fields.length > 9 &&
        fields[3] === '0A' &&
        parseInt(fields[1].split(':')[1], 16) === port
      ) {
        inodes.add(fields[9]);
      }
    }
  }
  return found ? inodes : null;
}

/**
 * True once the process `pid` itself listens on `port`: a port someone else took (between the
 * probe and the bind, or while our service was down) does not count. Where /proc is missing,
 * anything accepting connections on the port counts.
 */
export async function listensOn(pid: number, port: number): Promise<boolean> {
  const inodes = listeningInodes(port);
  if (inodes === null) return isListening(port);
  if (inodes.size === 0) return false;
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return false;
  }
  return fds.some((fd) => {
    try {
      const link = readlinkSync(`/proc/${pid}/fd/${fd}`);
      return link.startsWith('socket:[') && inodes.has(link.slice(8, -1));
    } catch {
      return false;
    }
  });
}
