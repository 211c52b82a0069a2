import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { RESOLVED_OPTIONS, type ResolvedCogmanOptions } from '../config';
import { COGMAN_REDIS, type CogmanRedis } from '../store/redis-connection';
import { redisKeys, type RedisKeys } from '../store/redis-keys';
import { within } from '../util/within';
import { TaskHandlerRegistry } from './task-handler.registry';

/** How often each worker process reports the deliveries it holds. */
export const WORKER_REPORT_INTERVAL = 2000;
/** A report not refreshed for this long no longer counts (its worker stopped or died). */
export const WORKER_REPORT_TTL = 10_000;

/** Fields of a worker's report that are not queue names. */
export const WORKER_REPORT_FIELDS = new Set([
  'pid',
  'host',
  'at',
  'tasks',
  'active',
  'high_concurrency',
  'low_concurrency',
  'started',
]);

/** One live worker process, as its last report in Redis describes it. */
export interface WorkerReport {
  /** `<host>-<pid>-<random>`: unique per process. */
  id: string;
  host: string;
  pid: number;
  /** Names of the tasks it has handlers for. */
  tasks: string[];
  /** Deliveries it holds (received, not acknowledged), per queue. */
  held: Map<string, number>;
}

/**
 * The live worker processes of the namespace, read from the reports they write to Redis (see
 * `WorkerStatusReporter`): what each holds and which task names it handles. `cached` answers from
 * a recent read, and `checkServed` (called on every send) reads only when its answer is stale.
 */
@Injectable()
export class WorkerDirectory {
  private readonly logger = new Logger('Cogman');
  private readonly keys: RedisKeys;
  private last?: { at: number; reports: WorkerReport[]; tasks: Set<string> };
  private reading?: Promise<WorkerReport[]>;
  /** Task names warned of (once each), and those waiting for a read to be checked. */
  private readonly warned = new Set<string>();
  private readonly unchecked = new Set<string>();

  constructor(
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedCogmanOptions,
    private readonly registry: TaskHandlerRegistry,
    @Optional() @Inject(COGMAN_REDIS) private readonly redis: CogmanRedis | null = null,
  ) {
    this.keys = redisKeys(options.namespace);
  }

  /**
   * Logs one warning per task name sent that no live worker has a handler for (in the
   * background: the send goes on, as a worker may start later). Unknown while Redis is away.
   */
  checkServed(name: string): void {
    if (this.warned.has(name)) return;
    const last = this.last;
    if (last && Date.now() - last.at <= WORKER_REPORT_INTERVAL && last.tasks.has(name)) return;
    // This process runs it itself (its own report may not be written yet).
    if (this.options.startWorker && this.registry.get(name)) return;
    this.unchecked.add(name);
    if (this.unchecked.size === 1) void this.checkUnchecked();
  }

  private async checkUnchecked(): Promise<void> {
    const reports = await this.read().catch(() => undefined);
    const names = [...this.unchecked];
    this.unchecked.clear();
    if (!reports) return;
    const served = this.last!.tasks;
    for (const name of names) {
      if (served.has(name) || this.warned.has(name)) continue;
      this.warned.add(name);
      this.logger.warn(
        `No live worker has a handler for task "${name}" (${reports.length} worker(s) reporting${this.options.namespace ? ` in namespace ${this.options.namespace}` : ''}): it was sent, and waits in its queue until a worker with the handler takes it; a worker without it hands it back for unknownTaskGracePeriod (${this.options.unknownTaskGracePeriod} ms), then dead-letters it. Logged once per task name.`,
      );
    }
  }

  /** The live reports; rejects while Redis is unreachable or does not answer in time. */
  read(): Promise<WorkerReport[]> {
    const redis = this.redis;
    if (!redis || redis.status !== 'ready') {
      return Promise.reject(new Error('Redis is not connected'));
    }
    this.reading ??= (async () => {
      const reading = (async () => {
        const ids = await redis.zrangebyscore(this.keys.workers, Date.now(), '+inf');
        const hashes = await Promise.all(ids.map((id) => redis.hgetall(this.keys.worker(id))));
        return ids.flatMap((id, i) =>
          Object.keys(hashes[i]).length > 0 ? [parseReport(id, hashes[i])] : [],
        );
      })();
      const reports = await within(reading, this.options.requestTimeout, () => {
        reading.catch(() => {});
        throw new Error('Redis did not answer');
      });
      this.last = { at: Date.now(), reports, tasks: new Set(reports.flatMap((r) => r.tasks)) };
      return reports;
    })().finally(() => (this.reading = undefined));
    return this.reading;
  }

  /** The reports of a read at most `maxAge` ms old, reading them again if the last is older. */
  async cached(maxAge: number): Promise<WorkerReport[]> {
    if (this.last && Date.now() - this.last.at <= maxAge) return this.last.reports;
    return this.read();
  }
}

function parseReport(id: string, hash: Record<string, string>): WorkerReport {
  const held = new Map<string, number>();
  for (const [field, value] of Object.entries(hash)) {
    if (!WORKER_REPORT_FIELDS.has(field)) held.set(field, Number(value) || 0);
  }
  return {
    id,
    host: hash.host ?? '',
    pid: Number(hash.pid) || 0,
    tasks: parseTasks(hash.tasks),
    held,
  };
}

/** A report's task names (JSON); a report of an older Cogman has none. */
function parseTasks(value: string | undefined): string[] {
  if (!value) return [];
  try {
    const parsed: unknown = JSON.parse(value);
    return Array.isArray(parsed) ? parsed.filter((name) => typeof name === 'string') : [];
  } catch {
    return [];
  }
}
