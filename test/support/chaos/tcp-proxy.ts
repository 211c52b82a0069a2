import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * How `cut` breaks the network:
 * - 'reset': every connection is reset (RST to both ends) and new ones are reset as soon as they
 *   are accepted — a crashed host or a firewall that rejects;
 * - 'blackhole': connections stay open but nothing moves in either direction, and new ones are
 *   accepted but not forwarded — a silent partition, which only heartbeats or timeouts detect.
 *   Nothing crosses it, not even a close or a reset: when one side gives up (a heartbeat
 *   timeout), the other learns it only after `restore`. Nothing is dropped either: what was sent
 *   meanwhile moves on after `restore`, as TCP retransmits after a short partition.
 */
export type CutMode = 'reset' | 'blackhole';

/** Counters for assertions; they only grow. */
export interface ProxyStats {
  /** Connections the proxy accepted from clients. */
  accepted: number;
  /** Connections the proxy opened to the target. */
  forwarded: number;
  /** Client connections open now. */
  active: number;
  /** Connections the proxy reset: by `cut({ mode: 'reset' })` or on arrival while cut. */
  reset: number;
  /** Connections whose connection to the target failed (they were reset). */
  targetFailures: number;
  bytesToTarget: number;
  bytesToClient: number;
}

interface Link {
  client: Socket;
  target?: Socket;
  /** Sockets paused because the other side's write buffer is full. */
  backpressured: Set<Socket>;
}

/**
 * A TCP proxy on a loopback port, between the application and one service, to cut the network
 * without touching the service. Everything happens on events; `cut` and `restore` take effect
 * synchronously, so specs never sleep to synchronise with it.
 */
export class TcpProxy {
  private readonly links = new Set<Link>();
  private readonly counters: Omit<ProxyStats, 'active'> = {
    accepted: 0,
    forwarded: 0,
    reset: 0,
    targetFailures: 0,
    bytesToTarget: 0,
    bytesToClient: 0,
  };
  private state: 'open' | CutMode = 'open';
  private closed = false;
  /** Closes and resets that happened behind a blackhole, passed on at `restore`. */
  private held: (() => void)[] = [];

  private constructor(
    private readonly server: Server,
    readonly port: number,
    readonly target: { host: string; port: number },
  ) {
    server.on('connection', (socket) => this.accept(socket));
  }

  /** Listens on 127.0.0.1 (a port the OS picks, held until `close`) and forwards to `target`. */
  static async start(target: { host?: string; port: number }): Promise<TcpProxy> {
    const server = createServer({ noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port: 0 }, resolve);
    });
    const { port } = server.address() as { port: number };
    return new TcpProxy(server, port, { host: target.host ?? '127.0.0.1', port: target.port });
  }

  /** `uri` with its host and port replaced by the proxy's (amqp://, redis://, mongodb://). */
  uriFor(uri: string): string {
    const url = new URL(uri);
    url.hostname = '127.0.0.1';
    url.port = String(this.port);
    return url.toString();
  }

  /** 'open', or how it is cut. */
  get mode(): 'open' | CutMode {
    return this.state;
  }

  get stats(): ProxyStats {
    return { ...this.counters, active: this.links.size };
  }

  /** Cuts the network (see `CutMode`); takes effect before it returns. */
  cut({ mode }: { mode: CutMode }): void {
    this.state = mode;
    // What a blackhole held is moot once everything is reset.
    if (mode === 'reset') this.held = [];
    for (const link of [...this.links]) {
      if (mode === 'reset') {
        this.counters.reset++;
        this.resetLink(link);
      } else {
        link.client.pause();
        link.target?.pause();
      }
    }
  }

  /** Lets traffic through again; what a blackhole held moves on. */
  restore(): void {
    const wasBlackhole = this.state === 'blackhole';
    this.state = 'open';
    if (!wasBlackhole) return;
    for (const link of this.links) {
      if (!link.target) {
        this.connectTarget(link);
        continue;
      }
      if (!link.backpressured.has(link.client)) link.client.resume();
      if (!link.backpressured.has(link.target)) link.target.resume();
    }
    for (const passOn of this.held.splice(0)) passOn();
  }

  /** Stops listening and destroys every connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.held = [];
    for (const link of [...this.links]) {
      link.client.destroy();
      link.target?.destroy();
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    this.counters.accepted++;
    client.on('error', () => {});
    if (this.state === 'reset' || this.closed) {
      this.counters.reset++;
      reset(client);
      return;
    }
    const link: Link = { client, backpressured: new Set() };
    this.links.add(link);
    // Nothing is read from the client until its data can go somewhere.
    client.pause();
    client.once('close', (hadError) => {
      this.links.delete(link);
      const { target } = link;
      if (!target) return;
      // A reset client resets the target too; one that closed ends it.
      this.passOn(() => (hadError ? reset(target) : target.end()));
    });
    if (this.state === 'open') this.connectTarget(link);
  }

  private connectTarget(link: Link): void {
    const { client } = link;
    if (client.destroyed) return;
    const target = createConnection({ ...this.target, noDelay: true });
    link.target = target;
    this.counters.forwarded++;
    target.pause();
    target.on('error', () => {});
    let connected = false;
    target.once('connect', () => {
      connected = true;
      this.pipe(link, client, target, 'bytesToTarget');
      this.pipe(link, target, client, 'bytesToClient');
      if (this.state === 'open') {
        client.resume();
        target.resume();
      }
    });
    target.once('close', (hadError) => {
      if (!connected) this.counters.targetFailures++;
      // The client learns what the service did: a refusal or a reset is a reset; an orderly
      // close ends the client once the data before it has gone through (see `pipe`).
      if (!connected || hadError) this.passOn(() => reset(client));
    });
  }

  private pipe(
    link: Link,
    from: Socket,
    to: Socket,
    counter: 'bytesToTarget' | 'bytesToClient',
  ): void {
    from.on('data', (chunk: Buffer) => {
      this.counters[counter] += chunk.length;
      if (to.write(chunk)) return;
      from.pause();
      link.backpressured.add(from);
      to.once('drain', () => {
        link.backpressured.delete(from);
        if (this.state === 'open') from.resume();
      });
    });
    from.once('end', () => to.end());
  }

  /** Passes a close or a reset on, or holds it while a blackhole is in place. */
  private passOn(action: () => void): void {
    if (this.state === 'blackhole') this.held.push(action);
    else action();
  }

  private resetLink(link: Link): void {
    this.links.delete(link);
    reset(link.client);
    if (link.target) reset(link.target);
  }
}

/** Closes a socket with an RST, as a crashed peer or a rejecting firewall would. */
function reset(socket: Socket): void {
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}
