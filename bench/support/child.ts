import { spawn } from 'node:child_process';
import { join } from 'node:path';
import {
  READY_LINE,
  RESULT_PREFIX,
  TWO_PROCESS_SYSTEMS,
  type RunConfig,
  type RunResult,
} from './config';
import { deleteResources, type RunResources } from './services';

export const ROOT = join(__dirname, '..', '..');
const CHILD = join(ROOT, 'bench', 'runners', 'run.child.ts');

export interface ChildOptions {
  /** Extra node flags, such as `--cpu-prof`. */
  nodeArgs?: string[];
  /** The child is killed (by its pid) after this long. */
  timeoutMs: number;
  /** Called once the child's system has started (a worker: once it consumes). */
  onReady?: () => void;
}

/** Runs one configuration in a child process and returns what it reported. */
export function runChild(config: RunConfig, { nodeArgs = [], timeoutMs, onReady }: ChildOptions) {
  return new Promise<RunResult>((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, '-r', '@swc-node/register', CHILD], {
      cwd: ROOT,
      env: { ...process.env, BENCH_CONFIG: JSON.stringify(config) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let ready = false;
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (!ready && stdout.includes(READY_LINE)) {
        ready = true;
        onReady?.();
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      const line = stdout.split('\n').find((l) => l.startsWith(RESULT_PREFIX));
      if (code === 0 && line) {
        resolve(JSON.parse(line.slice(RESULT_PREFIX.length)) as RunResult);
        return;
      }
      const why = signal === 'SIGKILL' ? `killed after ${timeoutMs} ms` : `exit ${code ?? signal}`;
      reject(
        new Error(`${config.system} ${config.mode} run failed (${why}):\n${stderr || stdout}`),
      );
    });
  });
}

/** The queues, keys and database a run of `config` creates. */
export function resourcesOf(config: RunConfig): RunResources {
  const { name } = config;
  switch (config.system) {
    case 'raw':
      return { queues: [name], redisPatterns: [] };
    case 'bullmq':
    case 'bullmq-2p':
      return { queues: [], redisPatterns: [`${name}:*`] };
    case 'cogman':
    case 'cogman-mongo':
    case 'cogman-compare':
    case 'cogman-2p':
      return {
        queues: [
          `${name}.high_priority_queue_0`,
          `${name}.low_priority_queue_0`,
          `${name}.cogman_dead_letter_queue`,
        ],
        redisPatterns: [`cogman:{${name}}:*`],
        mongoDatabase: config.system === 'cogman-mongo' ? name : undefined,
      };
  }
}

/**
 * Runs the child (a producer and a worker process, for a two-process system), then deletes what
 * it created, whether it succeeded or not.
 */
export async function runAndCleanUp(config: RunConfig, options: ChildOptions): Promise<RunResult> {
  try {
    if (!TWO_PROCESS_SYSTEMS.includes(config.system)) return await runChild(config, options);
    return await runTwoProcesses(config, options);
  } finally {
    await deleteResources(resourcesOf(config));
  }
}

/**
 * A worker process, then, once it consumes, a producer process, as they are deployed. The run
 * goes from the producer's first send to the worker's last completion; CPU is both processes'.
 */
async function runTwoProcesses(config: RunConfig, options: ChildOptions): Promise<RunResult> {
  let consuming!: () => void;
  const ready = new Promise<void>((resolve) => (consuming = resolve));
  const worker = runChild({ ...config, role: 'worker' }, { ...options, onReady: consuming });
  // A worker that fails before it is ready settles `worker` first.
  await Promise.race([ready, worker]);
  const producer = await runChild({ ...config, role: 'producer' }, options);
  const consumer = await worker;
  const endToEndMs = consumer.wallMs.finished - producer.wallMs.started;
  return {
    ...producer,
    config,
    completed: consumer.completed,
    duplicates: consumer.duplicates,
    endToEndMs,
    endToEndRate: (config.count / endToEndMs) * 1000,
    rssPeakMb: Math.max(producer.rssPeakMb, consumer.rssPeakMb),
    cpuUserMs: producer.cpuUserMs + consumer.cpuUserMs,
    cpuSystemMs: producer.cpuSystemMs + consumer.cpuSystemMs,
    // The worker's window spans the producer's: the servers' CPU over the whole run.
    serverCpuMs: consumer.serverCpuMs,
    wallMs: { started: producer.wallMs.started, finished: consumer.wallMs.finished },
    notes: { ...producer.notes, worker: JSON.stringify(consumer.notes) },
  };
}
