import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { mongo } from 'mongoose';
import { waitFor } from '../wait';
import { freePort, listensOn } from './ports';
import { CHAOS_DIR_PREFIX, reaper } from './reaper';
import { ServiceProcess } from './service-process';
import { Timings } from './timings';

const FERRETDB_VERSION = 'v1.24.2';

/** The binary `.ci/services.sh install` builds (`COGMAN_FERRETDB_BIN` overrides it). */
export function ferretdbBinary(): string {
  const cacheDir = process.env.COGMAN_CACHE_DIR ?? join(homedir(), '.cache', 'cogman');
  return process.env.COGMAN_FERRETDB_BIN ?? join(cacheDir, `ferretdb-${FERRETDB_VERSION}`);
}

/**
 * A private FerretDB (MongoDB wire protocol, SQLite backend) on a loopback port of its own, run
 * as a child of the test process, its data and state in its own dir. `restart` keeps both.
 */
export class IsolatedFerretDB {
  readonly timings = new Timings();
  port = 0;
  dir = '';
  private server?: ServiceProcess;
  private removed = false;

  /** `mongodb://127.0.0.1:<port>/` */
  get uri(): string {
    return `mongodb://127.0.0.1:${this.port}/`;
  }

  get pid(): number | undefined {
    return this.server?.running ? this.server.pid : undefined;
  }

  /** Picks its port without starting it: a URI to give an application before FerretDB is up. */
  async reserve(): Promise<string> {
    this.port ||= await freePort();
    return this.uri;
  }

  /** Starts FerretDB and waits until it answers a ping. */
  async start(): Promise<void> {
    if (this.server?.running) return;
    if (this.removed) throw new Error('This FerretDB was stopped for good');
    const binary = ferretdbBinary();
    if (!existsSync(binary)) {
      throw new Error(`FerretDB is not built at ${binary}: run \`bash .ci/services.sh install\``);
    }
    await this.timings.measure('start', async () => {
      if (!this.dir) {
        this.dir = await mkdtemp(`${CHAOS_DIR_PREFIX}ferretdb-`);
        reaper.trackDir(this.dir);
        await mkdir(join(this.dir, 'data'));
      }
      // Again after `kill`: the same port.
      if (this.port) return this.launch(binary);
      for (let attempt = 1; ; attempt++) {
        this.port = await freePort();
        try {
          return await this.launch(binary);
        } catch (error) {
          // Another program took the port between the probe and the bind: try another.
          if (!/address already in use/i.test(String(error)) || attempt === 3) throw error;
        }
      }
    });
  }

  /** Stops FerretDB (SIGTERM) and starts it again on the same port with the same data. */
  async restart(): Promise<void> {
    await this.timings.measure('restart', async () => {
      await this.server?.stop();
      await this.launch(ferretdbBinary());
    });
  }

  /** Kills FerretDB with SIGKILL. */
  async kill(): Promise<void> {
    await this.timings.measure('kill', async () => this.server?.kill());
  }

  /** Stops FerretDB and deletes its dir. Safe to call twice. */
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

  private async launch(binary: string): Promise<void> {
    const server = ServiceProcess.spawn('ferretdb', binary, [
      '--handler=sqlite',
      `--sqlite-url=file:${join(this.dir, 'data')}/`,
      `--listen-addr=127.0.0.1:${this.port}`,
      '--debug-addr=127.0.0.1:0',
      `--state-dir=${this.dir}`,
      '--telemetry=disable',
      '--log-level=warn',
    ]);
    this.server = server;
    const outcome = await waitFor(
      `FerretDB on port ${this.port}`,
      async () => {
        if (!server.running) return 'exited';
        return (await listensOn(server.pid, this.port)) && (await ping(this.uri)) && 'ready';
      },
      { timeout: 30_000, interval: 50 },
    );
    if (outcome === 'exited') throw new Error(`FerretDB exited at start:\n${server.output()}`);
  }
}

async function ping(uri: string): Promise<boolean> {
  const client = new mongo.MongoClient(uri, {
    directConnection: true,
    serverSelectionTimeoutMS: 1000,
    connectTimeoutMS: 1000,
  });
  try {
    await client.db('admin').command({ ping: 1 });
    return true;
  } catch {
    return false;
  } finally {
    await client.close();
  }
}
