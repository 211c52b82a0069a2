import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect as connectTcp } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { mongo } from 'mongoose';
import { MONGO_URI } from './services';
import { waitFor, within } from './wait';

/** `uri` with its database replaced by `database` (options kept). */
export function withDatabase(uri: string, database: string): string {
  const match = /^(mongodb(?:\+srv)?:\/\/[^/?]*)(?:\/[^?]*)?(\?.*)?$/i.exec(uri);
  if (!match) throw new Error(`not a MongoDB URI: ${uri}`);
  return `${match[1]}/${database}${match[2] ?? ''}`;
}

/** A URI of the shared test server (FerretDB on 27017) for a database of the spec's own. */
export function mongoUri(database: string): string {
  return withDatabase(MONGO_URI, database);
}

/** A plain driver client, for inspecting what Cogman wrote and dropping a spec's database. */
export async function openMongo(uri = MONGO_URI): Promise<mongo.MongoClient> {
  return mongo.MongoClient.connect(uri, { serverSelectionTimeoutMS: 10_000 });
}

/** Drops a spec's database on the shared server. */
export async function dropDatabase(database: string): Promise<void> {
  const client = await openMongo();
  try {
    await client.db(database).dropDatabase();
  } finally {
    await client.close();
  }
}

const FERRETDB_BIN =
  process.env.COGMAN_FERRETDB_BIN ?? join(homedir(), '.cache', 'cogman', 'ferretdb-v1.24.2');

/**
 * A FerretDB server of the spec's own (SQLite backend, a temporary data directory, a free
 * port), for stopping and starting MongoDB under Cogman. Killed by its PID; the shared server on
 * 27017 is never touched.
 */
export class OwnFerretDb {
  readonly dir = mkdtempSync(join(tmpdir(), 'cogman-ferretdb-'));
  private child?: ChildProcess;
  private output = '';

  private constructor(readonly port: number) {}

  static async create(): Promise<OwnFerretDb> {
    return new OwnFerretDb(await freePort());
  }

  get uri(): string {
    return `mongodb://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts it (again, on the same port and data) and waits until it accepts connections. */
  async start(): Promise<void> {
    if (this.running) return;
    const child = spawn(
      FERRETDB_BIN,
      [
        '--handler=sqlite',
        `--sqlite-url=file:${this.dir}/`,
        `--listen-addr=127.0.0.1:${this.port}`,
        '--debug-addr=127.0.0.1:0',
        `--state-dir=${this.dir}`,
        '--telemetry=disable',
        '--log-level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.child = child;
    await waitFor(
      `FerretDB to listen on ${this.port}`,
      async () => {
        if (!this.running) throw new Error(`FerretDB exited:\n${this.output}`);
        return portOpen(this.port);
      },
      { timeout: 30_000, interval: 50 },
    );
  }

  /** Kills it by its PID and waits until it has exited. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await within('FerretDB to exit', exited, 30_000);
  }

  /** Stops it and deletes its data. */
  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address
          ? resolve(address.port)
          : reject(new Error('no port')),
      );
    });
  });
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connectTcp(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
