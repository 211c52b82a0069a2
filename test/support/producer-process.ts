import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { within } from './wait';

const FIXTURE = join(__dirname, '..', 'fixtures', 'producer.main.ts');

/** A producer in its own process (see fixtures/producer.main.ts). */
export interface ProducerProcess {
  child: ChildProcess;
  pid: number;
  output: () => string;
  exited: Promise<number | null>;
  /** Resolves when the process has printed `line` `times` times in all. */
  printed(line: string, times?: number): Promise<void>;
}

/** Starts a producer process and waits until it is ready. Stop it with `stopProducerProcess`. */
export async function startProducerProcess(env: Record<string, string>): Promise<ProducerProcess> {
  const child = spawn(process.execPath, ['-r', '@swc-node/register', FIXTURE], {
    cwd: join(__dirname, '..', '..'),
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const waiters = new Set<() => void>();
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    for (const check of waiters) check();
  });
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const printed = (line: string, times = 1) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (output.split('\n').filter((l) => l === line).length < times) return;
        waiters.delete(check);
        resolve();
      };
      waiters.add(check);
      check();
      void exited.then((code) => reject(new Error(`producer exited with ${code}:\n${output}`)));
    });
  await within('the producer process to start', printed('ready'), 60_000);
  return { child, pid: child.pid!, output: () => output, exited, printed };
}

/** Kills a producer started by this spec (by its own PID) and waits for it to exit. */
export async function stopProducerProcess(
  producer: ProducerProcess | undefined,
  signal: NodeJS.Signals = 'SIGTERM',
): Promise<void> {
  if (!producer || producer.child.exitCode !== null || producer.child.signalCode !== null) return;
  producer.child.kill(signal);
  await within('the producer process to exit', producer.exited, 60_000);
}
