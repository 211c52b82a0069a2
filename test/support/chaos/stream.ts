import { setTimeout as delay } from 'node:timers/promises';
import {
  TaskHandler,
  type CogmanClient,
  type CogmanTaskHandler,
  type TaskContext,
} from '@cogman/nestjs';
import { waitFor } from '../wait';

/** Runs of each task id, counted by `CountStreamRuns` in this process. */
export const streamRuns = new Map<string, number>();

/** The handler of a stream's `chaos` tasks when they run in the spec's own process. */
@TaskHandler('chaos')
export class CountStreamRuns implements CogmanTaskHandler {
  async handle(_payload: unknown, ctx: TaskContext) {
    streamRuns.set(ctx.task.taskId, (streamRuns.get(ctx.task.taskId) ?? 0) + 1);
    // A little work, so that some tasks are running when a fault strikes.
    await delay(2);
  }
}

/** A fault injected once `after` sends have begun; the stream goes on meanwhile. */
export interface Fault {
  after: number;
  name: string;
  run: () => Promise<void>;
}

export interface StreamOptions {
  client: CogmanClient;
  /** Task name whose handler counts runs in `runs`. */
  task: string;
  total: number;
  /** Sends per second, and at most this many unsettled at once. */
  rate: number;
  inFlight: number;
  faults: Fault[];
  /** taskId → runs of the given tasks, kept by the handler (in whichever process runs it). */
  runs: (taskIds: string[]) => Promise<Map<string, number>> | Map<string, number>;
  /** How long to wait for every accepted task to run, after the last send. */
  settle?: number;
}

export interface StreamReport {
  sent: number;
  /** `sendTask` resolved (queued, or initiated while the broker was unreachable). */
  accepted: number;
  acceptedOffline: number;
  rejected: number;
  rejections: string[];
  /** Accepted tasks that ran at least once. */
  processed: number;
  /** Tasks that ran more than once. */
  duplicated: number;
  /** Accepted tasks that never ran. */
  lost: number;
  lostIds: string[];
  timeline: string[];
}

/**
 * Sends a stream of tasks at a steady pace, injects the faults on the way, then waits for every
 * accepted task to run (or the settle time to pass) and says what happened to each.
 */
export async function runStream(options: StreamOptions): Promise<StreamReport> {
  const { client, task, total, rate, inFlight, faults } = options;
  const began = Date.now();
  const timeline: string[] = [];
  const mark = (event: string) => timeline.push(`${Date.now() - began} ms ${event}`);
  const accepted: { taskId: string; status: string }[] = [];
  const rejections: string[] = [];
  const faultRuns: Promise<void>[] = [];
  let next = 0;

  const sender = async () => {
    while (next < total) {
      const n = next++;
      for (const fault of faults) {
        if (fault.after === n) {
          faultRuns.push(
            (async () => {
              mark(`${fault.name}: begins`);
              await fault.run();
              mark(`${fault.name}: done`);
            })(),
          );
        }
      }
      const due = began + (n * 1000) / rate;
      if (due > Date.now()) await delay(due - Date.now());
      try {
        const record = await client.sendTask({ name: task, payload: { n } });
        accepted.push({ taskId: record.taskId, status: record.status });
      } catch (error) {
        rejections.push(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
      }
    }
  };
  await Promise.all(Array.from({ length: inFlight }, sender));
  mark('all sends settled');
  await Promise.all(faultRuns);

  const ids = accepted.map(({ taskId }) => taskId);
  let runs = await options.runs(ids);
  try {
    await waitFor(
      'every accepted task to run',
      async () => {
        runs = await options.runs(ids);
        return accepted.every(({ taskId }) => runs.has(taskId));
      },
      { timeout: options.settle ?? 60_000, interval: 200 },
    );
    mark('every accepted task ran');
  } catch {
    mark('gave up waiting for the accepted tasks to run');
  }
  const lostIds = accepted.filter(({ taskId }) => !runs.has(taskId)).map(({ taskId }) => taskId);
  return {
    sent: total,
    accepted: accepted.length,
    acceptedOffline: accepted.filter(({ status }) => status === 'initiated').length,
    rejected: rejections.length,
    rejections: [...new Set(rejections)],
    processed: accepted.length - lostIds.length,
    duplicated: [...runs.values()].filter((count) => count > 1).length,
    lost: lostIds.length,
    lostIds,
    timeline,
  };
}

/** The report as a few lines: sent, processed, duplicated, lost, and when things happened. */
export function describeStream(title: string, report: StreamReport): string {
  return [
    title,
    `  sent ${report.sent}, accepted ${report.accepted} (${report.acceptedOffline} while the broker was unreachable), rejected ${report.rejected}`,
    `  processed ${report.processed}, duplicated ${report.duplicated}, lost ${report.lost}`,
    ...(report.rejections.length
      ? [`  rejections: ${report.rejections.slice(0, 3).join(' | ')}`]
      : []),
    `  timeline: ${report.timeline.join('; ')}`,
  ].join('\n');
}
