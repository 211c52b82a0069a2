import { Inject, Injectable, Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { TaskConsumer } from './task.consumer';
import { TaskTopology } from '../broker/task-topology';
import { RESOLVED_OPTIONS, type ResolvedCogmanOptions } from '../config';
import { COGMAN_REDIS, type CogmanRedis } from '../store/redis-connection';
import { redisKeys, type RedisKeys } from '../store/redis-keys';
import { within } from '../util/within';
import { TaskHandlerRegistry } from './task-handler.registry';
import { WORKER_REPORT_INTERVAL, WORKER_REPORT_TTL } from './worker-directory';

/**
 * Unacknowledged messages are not visible over AMQP (`checkQueue` counts only ready ones), so
 * each worker process reports the deliveries it holds per queue in Redis, every
 * `WORKER_REPORT_INTERVAL`, and the REST API sums the live reports. The report also names the
 * tasks the worker has handlers for (`tasks`, a JSON list; see `WorkerDirectory`), so producers
 * learn of a task that no worker runs, and a worker of a task it cannot run whether another can. A report lapses after
 * `WORKER_REPORT_TTL` and is removed when the worker stops.
 */
@Injectable()
export class WorkerStatusReporter {
  private readonly logger = new Logger('Cogman:Worker');
  readonly workerId = `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
  private readonly keys: RedisKeys;
  private timer?: NodeJS.Timeout;
  private readonly startedAt = Date.now();
  private reporting?: Promise<void>;
  private failing = false;

  constructor(
    @Inject(COGMAN_REDIS) private readonly redis: CogmanRedis,
    private readonly consumer: TaskConsumer,
    private readonly topology: TaskTopology,
    private readonly registry: TaskHandlerRegistry,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedCogmanOptions,
  ) {
    this.keys = redisKeys(options.namespace);
  }

  /** Reports now and then every interval (worker processes only). */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.report(), WORKER_REPORT_INTERVAL);
    this.timer.unref();
    void this.report();
  }

  /** Stops reporting and removes this worker's report. */
  async stop(): Promise<void> {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = undefined;
    await this.reporting;
    if (this.redis.status !== 'ready') return;
    const removing = this.redis
      .multi()
      .del(this.keys.worker(this.workerId))
      .zrem(this.keys.workers, this.workerId)
      .exec();
    await within(removing, this.options.requestTimeout, () => undefined).catch(() => {});
  }

  private report(): Promise<void> {
    // One report at a time; while Redis is away, reports are skipped rather than queued.
    if (this.reporting || this.redis.status !== 'ready') return Promise.resolve();
    this.reporting = this.write()
      .then(() => {
        if (this.failing) this.logger.log('Reporting in-flight deliveries to Redis again');
        this.failing = false;
      })
      .catch((error: unknown) => {
        if (!this.failing)
          this.logger.warn(`Could not report in-flight deliveries: ${String(error)}`);
        this.failing = true;
      })
      .finally(() => (this.reporting = undefined));
    return this.reporting;
  }

  private async write(): Promise<void> {
    const now = Date.now();
    const held = this.consumer.inFlightByQueue();
    const fields: Record<string, string | number> = {
      pid: process.pid,
      host: hostname(),
      at: now,
      started: this.startedAt,
      active: this.consumer.activeCount,
      high_concurrency: this.options.highPriorityConcurrency,
      low_concurrency: this.options.lowPriorityConcurrency,
      tasks: JSON.stringify(this.registry.names()),
    };
    for (const queue of [...this.topology.high, ...this.topology.low]) {
      fields[queue] = held.get(queue) ?? 0;
    }
    const key = this.keys.worker(this.workerId);
    await this.redis
      .multi()
      .hset(key, fields)
      .pexpire(key, WORKER_REPORT_TTL)
      .zadd(this.keys.workers, now + WORKER_REPORT_TTL, this.workerId)
      .zremrangebyscore(this.keys.workers, '-inf', now)
      .pexpire(this.keys.workers, WORKER_REPORT_TTL)
      .exec();
  }
}
