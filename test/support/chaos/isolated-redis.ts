import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { waitFor } from '../wait';
import { freePort, listensOn } from './ports';
import { CHAOS_DIR_PREFIX, reaper } from './reaper';
import { ServiceProcess } from './service-process';
import { Timings } from './timings';

export interface IsolatedRedisOptions {
  /**
   * 'aof' (append-only file, fsync every second, as production Redis keeps data across
   * restarts) or 'none' (the default: a restart empties it, like the shared test Redis).
   */
  persistence?: 'aof' | 'none';
  /** More redis-server arguments, after the fixed ones (a later argument wins). */
  args?: string[];
  /**
   * A config file: written to `<dir>/redis.conf` at the first start and given to redis-server
   * ahead of the arguments (which win over it). Redis may rewrite it (CONFIG REWRITE, which a
   * sentinel sends with REPLICAOF; a sentinel saving its state) and reads it back on a restart.
   */
  config?: string;
  /** Its name in the reaper's list and in errors; 'redis-server' by default. */
  label?: string;
}

/**
 * A private redis-server on a loopback port of its own, run as a child of the test process
 * (not daemonized) with its own dir. `restart` keeps the port (and the data, with AOF).
 */
export class IsolatedRedis {
  readonly timings = new Timings();
  readonly persistence: 'aof' | 'none';
  readonly label: string;
  port = 0;
  dir = '';
  private readonly args: string[];
  private readonly config?: string;
  private server?: ServiceProcess;
  private removed = false;

  constructor(options: IsolatedRedisOptions = {}) {
    this.persistence = options.persistence ?? 'none';
    this.label = options.label ?? 'redis-server';
    this.args = options.args ?? [];
    this.config = options.config;
  }

  /** `redis://127.0.0.1:<port>/0` */
  get uri(): string {
    return `redis://127.0.0.1:${this.port}/0`;
  }

  get pid(): number | undefined {
    return this.server?.running ? this.server.pid : undefined;
  }

  /** Starts the server and waits until it answers PING (after loading its AOF, if any). */
  async start(): Promise<void> {
    if (this.server?.running) return;
    if (this.removed) throw new Error('This Redis was stopped for good');
    await this.timings.measure('start', async () => {
      if (!this.dir) {
        this.dir = await mkdtemp(`${CHAOS_DIR_PREFIX}redis-`);
        reaper.trackDir(this.dir);
        if (this.config !== undefined) await writeFile(this.configFile, this.config);
      }
      // Again after `kill`: the same port.
      if (this.port) return this.launch();
      for (let attempt = 1; ; attempt++) {
        this.port = await freePort();
        try {
          return await this.launch();
        } catch (error) {
          // Another program took the port between the probe and the bind: try another.
          if (!/address already in use/i.test(String(error)) || attempt === 3) throw error;
        }
      }
    });
  }

  /** `<dir>/redis.conf`, given to redis-server when the `config` option is set. */
  get configFile(): string {
    return join(this.dir, 'redis.conf');
  }

  /** Stops the server (SIGTERM: it flushes the AOF) and starts it again on the same port. */
  async restart(): Promise<void> {
    await this.timings.measure('restart', async () => {
      await this.server?.stop();
      await this.launch();
    });
  }

  /** Kills the server with SIGKILL (with AOF, up to the last second of writes may be lost). */
  async kill(): Promise<void> {
    await this.timings.measure('kill', async () => this.server?.kill());
  }

  /** Stops the server and deletes its dir. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.removed) return;
    await this.timings.measure('stop', async () => {
      await this.server?.stop();
      if (this.dir) {
        await rm(this.dir, { recursive: true, force: true });
        reaper.untrackDir(this.dir);
      }
    });
    this.removed = true;
  }

  private async launch(): Promise<void> {
    const aof = this.persistence === 'aof';
    const server = ServiceProcess.spawn(this.label, 'redis-server', [
      ...(this.config !== undefined ? [this.configFile] : []),
      '--port', String(this.port),
      '--bind', '127.0.0.1',
      '--daemonize', 'no',
      '--dir', this.dir,
      '--logfile', '',
      '--save', '',
      '--appendonly', aof ? 'yes' : 'no',
      '--appendfsync', 'everysec',
      '--protected-mode', 'yes',
      ...this.args,
    ]); // prettier-ignore
    this.server = server;
    const outcome = await waitFor(
      `${this.label} on port ${this.port}`,
      async () => {
        if (!server.running) return 'exited';
        return (await listensOn(server.pid, this.port)) && (await ping(this.port)) && 'ready';
      },
      { timeout: 30_000 },
    );
    if (outcome === 'exited') throw new Error(`${this.label} exited at start:\n${server.output()}`);
  }
}

/** True once Redis answers PING with PONG (a Redis still loading its data answers -LOADING). */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2000, () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
    socket.once('error', () => done(false));
  });
}
