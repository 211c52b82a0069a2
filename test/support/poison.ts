import type { CogmanClient } from '@cogman/nestjs';
import { waitFor, within } from './wait';
import type { WorkerProcess } from './worker-process';

/**
 * Starts worker processes one after another while the `poison` task (its handler kills its own
 * process: test/fixtures/worker.main.ts) keeps killing them, until one outlives it because the
 * task was dead-lettered. Resolves with how many workers it killed (one may die before it says
 * it is ready: it received the task as soon as it consumed).
 */
export async function startWorkersUntilDeadLettered(
  client: CogmanClient,
  taskId: string,
  startWorker: () => Promise<WorkerProcess>,
  { most }: { most: number },
): Promise<number> {
  const deadLettered = () =>
    waitFor('the dead letter', async () =>
      (await client.getTask(taskId))?.status === 'failed' ? ('dead-lettered' as const) : null,
    );
  for (let killed = 0; ; killed++) {
    if (killed > most) throw new Error(`${killed} workers killed: no delivery limit?`);
    let worker: WorkerProcess;
    try {
      worker = await startWorker();
    } catch (error) {
      if (/exited with .* before it was ready/.test(String(error))) continue;
      throw error;
    }
    const outcome = await within(
      'the worker to die, or the poison task to be dead-lettered',
      Promise.race([worker.exited.then(() => 'died' as const), deadLettered()]),
      60_000,
    );
    if (outcome === 'dead-lettered') return killed;
  }
}
