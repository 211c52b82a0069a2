import { setTimeout as pause } from 'node:timers/promises';
import type { Cluster, Redis } from 'ioredis';
import { TASK_STATUS_RANK, isTaskStatus } from '../../../libs/cogman/src/task';

/** What `watchStatuses` saw. */
export interface StatusWatchReport {
  /** Rounds of reads made (every task read once a round). */
  rounds: number;
  /** Reads that failed (during a failover), each of a whole chunk of tasks. */
  failedReads: number;
  /**
   * Breaches of the task log's monotonic rule: a record whose status went back (a lower rank
   * than one seen before), changed after a final status, or vanished once seen.
   */
  regressions: string[];
  /** The last status seen of each task (null: no record). */
  last: Map<string, string | null>;
}

/**
 * Reads the status of every task `ids()` names, over and over (pipelined, a chunk at a time, on
 * a client of the spec's own), until `stop`, and reports every record that broke the task log's
 * rule: a status only moves forward. Reads that fail (the master is gone) are counted and
 * skipped. In a Cluster every key of a namespace is in one slot, so a chunk is one pipeline to one
 * node.
 */
export function watchStatuses(
  reader: Redis | Cluster,
  keyOf: (taskId: string) => string,
  ids: () => readonly string[],
  { interval = 100, chunk = 500 }: { interval?: number; chunk?: number } = {},
) {
  const report: StatusWatchReport = { rounds: 0, failedReads: 0, regressions: [], last: new Map() };
  const highest = new Map<string, string>();
  let stopped = false;

  const check = (taskId: string, status: string | null) => {
    const before = highest.get(taskId);
    report.last.set(taskId, status);
    if (before === undefined) {
      if (status !== null) highest.set(taskId, status);
      return;
    }
    if (status === null || !isTaskStatus(status) || !isTaskStatus(before)) {
      report.regressions.push(`${taskId}: ${before}, then ${String(status)}`);
      return;
    }
    const [now, then] = [TASK_STATUS_RANK[status], TASK_STATUS_RANK[before]];
    const final = TASK_STATUS_RANK.success;
    if (now < then || (then === final && status !== before)) {
      report.regressions.push(`${taskId}: ${before}, then ${status}`);
      return;
    }
    if (now > then) highest.set(taskId, status);
  };

  const round = async () => {
    const all = [...ids()];
    for (let i = 0; i < all.length; i += chunk) {
      const part = all.slice(i, i + chunk);
      const pipeline = reader.pipeline();
      for (const taskId of part) pipeline.hget(keyOf(taskId), 'status');
      try {
        const results = (await pipeline.exec()) ?? [];
        if (results.some(([error]) => error)) throw new Error('a read failed');
        results.forEach(([, status], j) => check(part[j], status as string | null));
      } catch {
        report.failedReads += 1;
      }
    }
    report.rounds += 1;
  };

  const loop = (async () => {
    while (!stopped) {
      await round();
      await pause(interval);
    }
  })();

  return {
    report,
    /** Stops after one last round (every task read once more), and says what was seen. */
    stop: async (): Promise<StatusWatchReport> => {
      stopped = true;
      await loop;
      await round();
      return report;
    },
  };
}

/** How many tasks were last seen in each status, e.g. `success 2000`. */
export function statusCounts(report: StatusWatchReport): string {
  const counts = new Map<string, number>();
  for (const status of report.last.values()) {
    counts.set(String(status), (counts.get(String(status)) ?? 0) + 1);
  }
  return [...counts].map(([status, count]) => `${status} ${count}`).join(', ');
}
