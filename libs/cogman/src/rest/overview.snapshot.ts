import { Injectable } from '@nestjs/common';
import { defer, from, shareReplay, switchMap, timer, type Observable } from 'rxjs';
import { CogmanClient } from '../client/cogman.client';
import type { CogmanWorkerReport } from '../inspector/cogman.inspector';
import type { OverviewDto, OverviewWarningDto, WorkerDto } from './dto/operations.responses';
import { pausesJson } from './dto/pause.dto';

/** How often the shared snapshot is computed while someone watches. */
export const OVERVIEW_INTERVAL = 2000;
/** How far back "dead letters growing" compares. */
const GROWTH_WINDOW = 60_000;

/**
 * One snapshot of the queues, workers and connections, shared by every open dashboard: computed
 * every `OVERVIEW_INTERVAL` while at least one stream is open (and not at all otherwise), and
 * reused by polls within the interval, so that the number of tabs never multiplies the load on
 * the broker and Redis.
 */
@Injectable()
export class OverviewSnapshot {
  private last?: { at: number; value: Promise<OverviewDto> };
  private readonly deadLetterHistory: { at: number; count: number }[] = [];

  /** Snapshots, one now and one per interval, for as long as it is subscribed to. */
  readonly stream: Observable<OverviewDto> = defer(() => timer(0, OVERVIEW_INTERVAL)).pipe(
    switchMap(() => from(this.current())),
    shareReplay({ bufferSize: 1, refCount: true }),
  );

  constructor(private readonly client: CogmanClient) {}

  /** The latest snapshot if it is fresh, else a new one (one computation at a time). */
  current(): Promise<OverviewDto> {
    const now = Date.now();
    if (this.last && now - this.last.at < OVERVIEW_INTERVAL - 100) return this.last.value;
    const value = this.compute();
    this.last = { at: now, value };
    return value;
  }

  private async compute(): Promise<OverviewDto> {
    const services = this.client.services();
    const [queues, workers, pauses] = await Promise.allSettled([
      this.client.queues(),
      this.client.workers(),
      this.client.pauses(),
    ]);
    const queueStates = queues.status === 'fulfilled' ? queues.value.queues : null;
    const deadLetters = queueStates?.find((queue) => queue.kind === 'dead-letter')?.ready ?? null;
    const overview: OverviewDto = {
      at: new Date().toISOString(),
      queues: queueStates,
      ...(queues.status === 'rejected' ? { queuesError: errorText(queues.reason) } : {}),
      workers: workers.status === 'fulfilled' ? workers.value.map(workerJson) : null,
      pauses: pauses.status === 'fulfilled' ? pausesJson(pauses.value) : null,
      deadLetters,
      offlineTasks: services.offlineTasks,
      pendingRedisWrites: services.pendingRedisWrites,
      archive: services.mongo !== null,
      services: {
        broker: services.broker.publisherConnected,
        redis: services.redis.connected,
        mongo: services.mongo ? services.mongo.connected : null,
      },
      warnings: [],
      interval: OVERVIEW_INTERVAL,
    };
    overview.warnings = this.warnings(overview);
    return overview;
  }

  private warnings(overview: OverviewDto): OverviewWarningDto[] {
    const warnings: OverviewWarningDto[] = [];
    const warn = (level: OverviewWarningDto['level'], code: string, message: string) =>
      warnings.push({ level, code, message });
    if (!overview.services.broker) warn('error', 'BROKER_DOWN', 'RabbitMQ is unreachable');
    if (!overview.services.redis) warn('error', 'REDIS_DOWN', 'Redis is unreachable');
    if (overview.services.mongo === false) {
      warn('error', 'MONGO_DOWN', 'The MongoDB archive is unreachable');
    }
    if (overview.queuesError) warn('error', 'QUEUES_UNKNOWN', overview.queuesError);
    for (const kind of ['high', 'low'] as const) {
      // A paused priority has no consumer on purpose: say it is paused instead.
      if (overview.pauses?.[kind].paused) {
        warn(
          'warning',
          `${kind.toUpperCase()}_PRIORITY_PAUSED`,
          `The ${kind} priority is paused: no worker starts its tasks until it is resumed`,
        );
        continue;
      }
      const idle = (overview.queues ?? []).filter(
        (queue) => queue.kind === kind && queue.consumers === 0,
      );
      if (idle.length > 0) {
        const waiting = idle.reduce((sum, queue) => sum + (queue.ready ?? 0), 0);
        warn(
          kind === 'high' ? 'error' : 'warning',
          `NO_${kind.toUpperCase()}_PRIORITY_CONSUMER`,
          `No consumer on the ${kind} priority queue${idle.length > 1 ? 's' : ''} ${idle
            .map((queue) => queue.name)
            .join(', ')} (${waiting} message${waiting === 1 ? '' : 's'} waiting)`,
        );
      }
    }
    if (overview.workers && overview.workers.length === 0) {
      warn('warning', 'NO_WORKER', 'No Cogman worker process reports itself');
    }
    if (overview.offlineTasks > 0) {
      warn(
        'warning',
        'OFFLINE_TASKS',
        `${overview.offlineTasks} task(s) accepted here wait for the broker`,
      );
    }
    const growth = this.deadLetterGrowth(overview.deadLetters);
    if (growth > 0) {
      warn(
        'warning',
        'DEAD_LETTERS_GROWING',
        `Dead letters growing: ${growth} more in the last minute (${overview.deadLetters} in all)`,
      );
    } else if ((overview.deadLetters ?? 0) > 0) {
      warn('info', 'DEAD_LETTERS', `${overview.deadLetters} message(s) in the dead-letter queue`);
    }
    return warnings;
  }

  /** How many more dead letters there are than a minute ago (0 without history). */
  private deadLetterGrowth(count: number | null): number {
    const now = Date.now();
    const history = this.deadLetterHistory;
    while (history.length > 0 && history[0].at < now - GROWTH_WINDOW) history.shift();
    if (count === null) return 0;
    const oldest = history[0];
    history.push({ at: now, count });
    return oldest ? Math.max(0, count - oldest.count) : 0;
  }
}

/** A worker report as JSON. */
export function workerJson(worker: CogmanWorkerReport): WorkerDto {
  return {
    ...worker,
    reportedAt: worker.reportedAt.toISOString(),
    startedAt: worker.startedAt?.toISOString() ?? null,
  };
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
