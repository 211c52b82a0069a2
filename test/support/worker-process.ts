import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { within } from './wait';

const FIXTURE = join(__dirname, '..', 'fixtures', 'worker.main.ts');

/** A worker in its own process (see fixtures/worker.main.ts); `ready` resolves once it consumes. */
export interface WorkerProcess {
  child: ChildProcess;
  pid: number;
  output: () => string;
  exited: Promise<number | null>;
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
