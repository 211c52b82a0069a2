import { Logger } from '@nestjs/common';
import type { Counter, Histogram, Registry } from 'prom-client';
import type { TaskPriority, TaskStatus } from '../task';
import { loadOptional } from '../util/optional-dependency';

/** The Prometheus text format's content type (prom-client's `Registry.PROMETHEUS_CONTENT_TYPE`). */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/**
 * What Cogman's registry offers, in Cogman's own terms so that its type declarations do not need
 * prom-client installed. It is a prom-client `Registry` (cast it to merge it with yours).
 */
export interface CogmanMetricsRegistry {
  readonly contentType: string;
  metrics(): Promise<string>;
}

function promClient(): typeof import('prom-client') {
  return loadOptional(
    'Metrics (metrics: true)',
    ['prom-client'],
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded only when enabled
    () => require('prom-client') as typeof import('prom-client'),
  );
}

/** Distinct task names given their own label values; later ones share `_other`. */
export const MAX_METRIC_TASK_NAMES = 500;

/** What is read at scrape time (see `CogmanMetrics.collectWith`). */
export interface CogmanMetricsSnapshot {
  offlineTasks: number;
  pendingRedisWrites: number;
  activeTasks: number;
  /** Per queue; null when the broker could not be asked. */
  queues:
    | { queue: string; ready: number | null; unacked: number | null; consumers: number | null }[]
    | null;
}

type NameLabels = 'name' | 'priority';
/** Label children of one task name, by priority: looked up once, then reused. */
interface NameChildren {
  label: string;
  sent: Record<TaskPriority, Counter.Internal>;
  retried: Record<TaskPriority, Counter.Internal>;
  failed: Record<TaskPriority, Counter.Internal>;
  duration: Record<TaskPriority, Histogram.Internal<NameLabels>>;
  processed: Record<TaskPriority, Partial<Record<TaskStatus, Counter.Internal>>>;
}

/** How long one read of the state serves the gauges (one scrape reads it once). */
const SNAPSHOT_AGE = 1000;

const PRIORITIES: readonly TaskPriority[] = ['high', 'low'];

/**
 * Prometheus metrics of Cogman, in a registry of their own (never the global default, so they do
 * not clash with the application's). Counters are updated on the task path at the cost of a
 * lookup and an increment; queue depths and buffers are read when scraped. Expose them with
 * `GET <prefix>/metrics`, or from the application: `res.type(metrics.contentType).send(await
 * metrics.metrics())`, or merge `metrics.registry` with the application's own.
 */
export class CogmanMetrics {
  /** The registry holding Cogman's metrics (a prom-client `Registry`). */
  readonly registry: CogmanMetricsRegistry;
  private readonly promRegistry: Registry;
  private readonly logger = new Logger('Cogman:Metrics');
  private readonly names = new Map<string, NameChildren>();
  private readonly publishChildren: Record<TaskPriority, Histogram.Internal<'priority'>>;
  private collect?: () => Promise<CogmanMetricsSnapshot>;

  private readonly sent: Counter<NameLabels>;
  private readonly processed: Counter<NameLabels | 'status'>;
  private readonly failed: Counter<NameLabels>;
  private readonly retried: Counter<NameLabels>;
  private readonly duration: Histogram<NameLabels>;

  constructor() {
    const { Counter, Gauge, Histogram, Registry } = promClient();
    this.promRegistry = new Registry();
    this.registry = this.promRegistry;
    const registers = [this.promRegistry];
    const labelNames = ['name', 'priority'] as const;
    this.sent = new Counter({
      name: 'cogman_tasks_sent_total',
      help: 'New tasks accepted by sendTask, sendTasks or the REST API, in this process',
      labelNames,
      registers,
    });
    this.processed = new Counter({
      name: 'cogman_tasks_processed_total',
      help: 'Attempts whose handler ran to an outcome in this process, by recorded status (success, retry, failed)',
      labelNames: [...labelNames, 'status'] as const,
      registers,
    });
    this.failed = new Counter({
      name: 'cogman_tasks_failed_total',
      help: 'Tasks that ended failed in this process (no retry left, unrecoverable, or dead-lettered)',
      labelNames,
      registers,
    });
    this.retried = new Counter({
      name: 'cogman_tasks_retried_total',
      help: 'New attempts of failed tasks created in this process (automatic retries and retryTask)',
      labelNames,
      registers,
    });
    this.duration = new Histogram({
      name: 'cogman_task_duration_seconds',
      help: 'Time handlers ran, per attempt, in this process',
      labelNames,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600],
      registers,
    });
    const publish = new Histogram({
      name: 'cogman_publish_duration_seconds',
      help: "Time from publishing a task message to the broker's confirm",
      labelNames: ['priority'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.publishChildren = { high: publish.labels('high'), low: publish.labels('low') };

    const read = () => this.snapshot();
    new Gauge({
      name: 'cogman_offline_buffer_tasks',
      help: 'Tasks accepted while the broker was unreachable, waiting in this process to be published',
      registers,
      async collect() {
        const snapshot = await read();
        if (snapshot) this.set(snapshot.offlineTasks);
      },
    });
    new Gauge({
      name: 'cogman_pending_redis_writes',
      help: 'Status writes of this process waiting for Redis',
      registers,
      async collect() {
        const snapshot = await read();
        if (snapshot) this.set(snapshot.pendingRedisWrites);
      },
    });
    new Gauge({
      name: 'cogman_tasks_active',
      help: 'Deliveries being worked on in this process',
      registers,
      async collect() {
        const snapshot = await read();
        if (snapshot) this.set(snapshot.activeTasks);
      },
    });
    new Gauge({
      name: 'cogman_queue_messages',
      help: 'Messages per queue: ready (in the queue) and unacked (held by Cogman workers, as they last reported)',
      labelNames: ['queue', 'state'] as const,
      registers,
      async collect() {
        this.reset();
        for (const q of (await read())?.queues ?? []) {
          if (q.ready !== null) this.set({ queue: q.queue, state: 'ready' }, q.ready);
          if (q.unacked !== null) this.set({ queue: q.queue, state: 'unacked' }, q.unacked);
        }
      },
    });
    new Gauge({
      name: 'cogman_queue_consumers',
      help: 'Consumers per queue, as the broker counts them',
      labelNames: ['queue'] as const,
      registers,
      async collect() {
        this.reset();
        for (const q of (await read())?.queues ?? []) {
          if (q.consumers !== null) this.set({ queue: q.queue }, q.consumers);
        }
      },
    });
  }

  /** Content type of `metrics()`: the Prometheus text format. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Every metric in the Prometheus text format (reads queue depths from the broker). */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  /** Where scrape-time values come from (set by Cogman's inspector). */
  collectWith(collect: () => Promise<CogmanMetricsSnapshot>): void {
    this.collect = collect;
  }

  /** A new task was accepted. */
  taskSent(name: string, priority: TaskPriority): void {
    this.children(name).sent[priority].inc();
  }

  /** A handler ran to an outcome; `status` is what was recorded. */
  taskProcessed(
    name: string,
    priority: TaskPriority,
    status: TaskStatus,
    durationMs: number,
  ): void {
    const children = this.children(name);
    children.duration[priority].observe(durationMs / 1000);
    const byStatus = children.processed[priority];
    (byStatus[status] ??= this.processed.labels(children.label, priority, status)).inc();
  }

  /** A task ended failed. */
  taskFailed(name: string, priority: TaskPriority): void {
    this.children(name).failed[priority].inc();
  }

  /** A new attempt of a failed task was created. */
  taskRetried(name: string, priority: TaskPriority): void {
    this.children(name).retried[priority].inc();
  }

  /** The broker confirmed a message `seconds` after it was published. */
  published(priority: TaskPriority, seconds: number): void {
    this.publishChildren[priority].observe(seconds);
  }

  /** The state read for a scrape, shared by the gauges that read it. */
  private last?: { at: number; reading: Promise<CogmanMetricsSnapshot | null> };

  private snapshot(): Promise<CogmanMetricsSnapshot | null> {
    const now = Date.now();
    if (this.last && now - this.last.at < SNAPSHOT_AGE) return this.last.reading;
    const reading = (this.collect?.() ?? Promise.resolve(null)).catch((error: unknown) => {
      this.logger.warn(`Could not read Cogman's state for metrics: ${String(error)}`);
      return null;
    });
    this.last = { at: now, reading };
    return reading;
  }

  private label(name: string): string {
    return this.names.has(name) || this.names.size < MAX_METRIC_TASK_NAMES ? name : '_other';
  }

  private children(name: string): NameChildren {
    let children = this.names.get(name);
    if (children) return children;
    const label = this.label(name);
    if (label !== name) return this.children(label);
    const byPriority = <C>(make: (priority: TaskPriority) => C) =>
      Object.fromEntries(PRIORITIES.map((p) => [p, make(p)])) as Record<TaskPriority, C>;
    children = {
      label: name,
      sent: byPriority((p) => this.sent.labels(name, p)),
      retried: byPriority((p) => this.retried.labels(name, p)),
      failed: byPriority((p) => this.failed.labels(name, p)),
      duration: byPriority((p) => this.duration.labels(name, p)),
      processed: { high: {}, low: {} },
    };
    this.names.set(name, children);
    return children;
  }
}
