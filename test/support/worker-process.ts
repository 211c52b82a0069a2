import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { within } from './wait';

const FIXTURE = join(__dirname, '..', 'fixtures', 'worker.main.ts');

/** A worker in its own process (see fixtures/worker.main.ts); `ready` resolves once it consumes. */
export interface WorkerProcess {
  child: ChildProcess;
  pid: number;
  output: () => string;
  exited: Promise<number | null>;
}

/** The Redis key where the worker fixture counts the runs of a task. */
export const runsKey = (namespace: string, taskId: string) => `test:${namespace}:runs:${taskId}`;

/** Runs of each of the tasks that ran, as the worker fixture counts them in Redis. */
export async function runCounts(
  redis: Redis,
  namespace: string,
  taskIds: string[],
): Promise<Map<string, number>> {
  if (taskIds.length === 0) return new Map();
  const counts = await redis.mget(taskIds.map((id) => runsKey(namespace, id)));
  return new Map(taskIds.flatMap((id, i) => (counts[i] ? [[id, Number(counts[i])]] : [])));
}

export async function startWorkerProcess(env: Record<string, string>): Promise<WorkerProcess> {
  const child = spawn(process.execPath, ['-r', '@swc-node/register', FIXTURE], {
    cwd: join(__dirname, '..', '..'),
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('ready\n')) resolve();
    });
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    void exited.then((code) =>
      reject(new Error(`worker exited with ${code} before it was ready:\n${output}`)),
    );
  });
  await within('the worker process to start', ready, 60_000);
  return { child, pid: child.pid!, output: () => output, exited };
}

/** Kills a worker started by this spec (by its own PID) and waits for it to exit. */
export async function stopWorkerProcess(
  worker: WorkerProcess | undefined,
  signal: NodeJS.Signals = 'SIGTERM',
) {
  if (!worker || worker.child.exitCode !== null || worker.child.signalCode !== null) return;
  worker.child.kill(signal);
  await within('the worker process to exit', worker.exited, 60_000);
}
