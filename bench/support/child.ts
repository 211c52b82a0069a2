import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { RESULT_PREFIX, type RunConfig, type RunResult } from './config';
import { deleteResources, type RunResources } from './services';

export const ROOT = join(__dirname, '..', '..');
const CHILD = join(ROOT, 'bench', 'runners', 'run.child.ts');

export interface ChildOptions {
  /** Extra node flags, such as `--cpu-prof`. */
  nodeArgs?: string[];
  /** The child is killed (by its pid) after this long. */
  timeoutMs: number;
}

/** Runs one configuration in a child process and returns what it reported. */
export function runChild(config: RunConfig, { nodeArgs = [], timeoutMs }: ChildOptions) {
  return new Promise<RunResult>((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, '-r', '@swc-node/register', CHILD], {
      cwd: ROOT,
      env: { ...process.env, BENCH_CONFIG: JSON.stringify(config) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
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
      return { queues: [], redisPatterns: [`${name}:*`] };
    case 'cogman':
    case 'cogman-mongo':
    case 'cogman-compare':
      return {
        queues: [
          `${name}.high_priority_queue_0`,
          `${name}.low_priority_queue_0`,
          `${name}.cogman_dead_letter_queue`,
        ],
        redisPatterns: [`cogman:${name}:*`],
        mongoDatabase: config.system === 'cogman-mongo' ? name : undefined,
      };
  }
}

/** Runs the child, then deletes what it created, whether it succeeded or not. */
export async function runAndCleanUp(config: RunConfig, options: ChildOptions): Promise<RunResult> {
  try {
    return await runChild(config, options);
  } finally {
    await deleteResources(resourcesOf(config));
  }
}
