import { Inject, Injectable, Optional } from '@nestjs/common';
import type { BrokerConnection } from '../broker/broker-connection';
import { TaskConsumer } from '../worker/task.consumer';
import { TaskTopology } from '../broker/task-topology';
import { CONSUMER_CONNECTION, PUBLISHER_CONNECTION } from '../broker/broker.tokens';
import {
  redactUri,
  type RedisTopology,
  type ResolvedCogmanOptions,
  RESOLVED_OPTIONS,
} from '../config';
import { COGMAN_REDIS, type CogmanRedis } from '../store/redis-connection';
import { redisKeys } from '../store/redis-keys';
import { OfflineTaskBuffer } from '../dispatch/offline-task.buffer';
import { TaskLog } from '../store/task-log';
import { TASK_ARCHIVE, type ArchivePresence } from '../store/task-archive';
import { TaskHandlerRegistry } from '../worker/task-handler.registry';
import { CogmanMetrics, type CogmanMetricsSnapshot } from '../metrics/cogman.metrics';
import { within } from '../util/within';
import {
  WORKER_REPORT_FIELDS,
  WORKER_REPORT_INTERVAL,
  WorkerDirectory,
} from '../worker/worker-directory';
import { QueuePauses } from '../worker/queue-pauses';
import type { TaskPriority } from '../task';

/** One queue as `CogmanClient.queues()` describes it. */
export interface CogmanQueueState {
  name: string;
  kind: 'high' | 'low' | 'dead-letter';
  /** Messages waiting in the queue (AMQP `checkQueue`); null if the broker could not tell. */
  ready: number | null;
  /**
   * Messages delivered to Cogman workers and not yet acknowledged, summed over the workers'
   * last reports; null when Redis could not be read. Always 0 for the dead-letter queue.
   */
  unacked: number | null;
  /** Consumers, as the broker counts them (any client, Cogman or not). */
  consumers: number | null;
  /** Why the broker could not describe the queue (e.g. it was deleted). */
  error?: string;
}

/** One task name and the live workers that run it. */
export interface CogmanTaskWorkers {
  /** The task name. */
  name: string;
  /** Ids (`<host>-<pid>-<random>`) of the live workers with its handler. */
  workers: string[];
}

/** The queues of the namespace and the workers that report on them. */
export interface CogmanQueues {
  queues: CogmanQueueState[];
  /** Cogman worker processes whose report is live (seen within the report TTL). */
  workers: number | null;
  /**
   * The task names the live workers have handlers for, each with the ids of those workers
   * (`<host>-<pid>-<random>`), sorted by name; null when Redis could not be read.
   */
  tasks: CogmanTaskWorkers[] | null;
  /** How old the worker reports can be, in ms (they are refreshed at this interval). */
  reportInterval: number;
  /** Priorities paused in the namespace (`CogmanClient.pause`); null when Redis could not be read. */
  paused: TaskPriority[] | null;
}

/** One worker process, as it last reported itself in Redis (every `reportInterval`). */
export interface CogmanWorkerReport {
  /** The worker's id: host, pid and a random part. */
  id: string;
  /** Host name of its machine. */
  host: string;
  /** Its process id. */
  pid: number;
  /** When it last reported. */
  reportedAt: Date;
  /** When it started (null for a worker of an older version). */
  startedAt: Date | null;
  /** Handlers running; null for a worker of an older version. */
  activeTasks: number | null;
  /** Handlers it runs at once from the high priority queues (null for an older version). */
  highPriorityConcurrency: number | null;
  /** Handlers it runs at once from the low priority queues (null for an older version). */
  lowPriorityConcurrency: number | null;
  /** Deliveries it holds (running or read ahead), per queue. */
  held: Record<string, number>;
}

/** What Cogman is connected to and runs in this process (URIs without passwords). */
export interface CogmanServices {
  broker: { uri: string; publisherConnected: boolean; consumerConnected: boolean | null };
  /**
   * `uri`: the URI, or for `redis` options or a client, where it points
   * (`redis+sentinel://<sentinels>/<name>`, `redis+cluster://<startup nodes>`).
   */
  redis: { uri: string; topology: RedisTopology; connected: boolean };
  /** Null when no `mongoUri` is configured. */
  mongo: { uri: string; connected: boolean } | null;
  queues: { high: string[]; low: string[]; deadLetter: string };
  handlers: string[];
  /** Priorities paused in the namespace, as this process last read them (`CogmanClient.pause`). */
  paused: TaskPriority[];
  /** Tasks accepted while the broker was unreachable, waiting for it. */
  offlineTasks: number;
  /** Status writes waiting for Redis. */
  pendingRedisWrites: number;
  /** Null in a producer-only process (`startWorker: false`, or no handlers registered). */
  worker: {
    running: boolean;
    /** Queues consumed now; all of them but those of paused priorities in a healthy worker. */
    consumers: number;
    queues: number;
    /** Queues of the priorities this worker consumes now (not paused). */
    consumedQueues: number;
    /** Handlers running (or recording their outcome); deliveries read ahead are not counted. */
    activeTasks: number;
    highPriorityConcurrency: number;
    lowPriorityConcurrency: number;
    /** Deliveries held per handler slot (RabbitMQ's prefetch is the concurrency times this). */
    prefetchMultiplier: number;
  } | null;
}

@Injectable()
export class CogmanInspector {
  constructor(
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedCogmanOptions,
    @Inject(PUBLISHER_CONNECTION) private readonly publisher: BrokerConnection,
    @Inject(CONSUMER_CONNECTION) private readonly consumerConnection: BrokerConnection | null,
    @Inject(COGMAN_REDIS) private readonly redis: CogmanRedis,
    @Inject(TASK_ARCHIVE) private readonly archive: ArchivePresence | null,
    private readonly topology: TaskTopology,
    private readonly registry: TaskHandlerRegistry,
    private readonly consumer: TaskConsumer,
    private readonly offline: OfflineTaskBuffer,
    private readonly log: TaskLog,
    private readonly directory: WorkerDirectory,
    @Optional() @Inject(CogmanMetrics) metrics: CogmanMetrics | null = null,
    @Optional() @Inject(QueuePauses) private readonly pauses: QueuePauses | null = null,
  ) {
    metrics?.collectWith(() => this.metricsSnapshot());
  }

  /**
   * Ready messages and consumers per queue (from the broker), and the messages Cogman workers
   * hold (from their reports in Redis). Rejects with `BrokerUnavailableError` while the broker
   * is unreachable; while Redis is, `unacked` is null.
   */
  async queues(): Promise<CogmanQueues> {
    const { high, low, deadLetter } = this.topology;
    const [checks, held, pauses] = await Promise.all([
      this.publisher.checkQueues([...high, ...low, deadLetter]),
      this.heldByWorkers().catch(() => null),
      this.pauses ? this.pauses.state().catch(() => null) : Promise.resolve(null),
    ]);
    const kind = (name: string): CogmanQueueState['kind'] =>
      name === deadLetter ? 'dead-letter' : high.includes(name) ? 'high' : 'low';
    return {
      queues: checks.map((check) => {
        const unacked = held ? (held.perQueue.get(check.queue) ?? 0) : null;
        return check.error === undefined
          ? {
              name: check.queue,
              kind: kind(check.queue),
              ready: check.messages,
              unacked,
              consumers: check.consumers,
            }
          : {
              name: check.queue,
              kind: kind(check.queue),
              ready: null,
              unacked,
              consumers: null,
              error: check.error,
            };
      }),
      workers: held ? held.workers : null,
      tasks: held ? held.tasks : null,
      reportInterval: WORKER_REPORT_INTERVAL,
      paused: pauses ? (['high', 'low'] as const).filter((p) => pauses[p].paused) : null,
    };
  }

  /**
   * The worker processes of the namespace whose report is live, from the reports they write to
   * Redis. Rejects while Redis is unreachable.
   */
  async workers(): Promise<CogmanWorkerReport[]> {
    const reports = await this.workerReports();
    const number = (text: string | undefined) =>
      text === undefined || text === '' || !Number.isFinite(Number(text)) ? null : Number(text);
    return reports
      .map(({ id, report }) => {
        const held: Record<string, number> = {};
        for (const [field, value] of Object.entries(report)) {
          if (!WORKER_REPORT_FIELDS.has(field)) held[field] = Number(value) || 0;
        }
        const started = number(report.started);
        return {
          id,
          host: report.host ?? '',
          pid: number(report.pid) ?? 0,
          reportedAt: new Date(number(report.at) ?? 0),
          startedAt: started === null ? null : new Date(started),
          activeTasks: number(report.active),
          highPriorityConcurrency: number(report.high_concurrency),
          lowPriorityConcurrency: number(report.low_concurrency),
          held,
        };
      })
      .sort((a, b) => a.host.localeCompare(b.host) || a.pid - b.pid);
  }

  private async workerReports(): Promise<{ id: string; report: Record<string, string> }[]> {
    if (this.redis.status !== 'ready') throw new Error('Redis is not connected');
    const keys = redisKeys(this.options.namespace);
    const reading = (async () => {
      const ids = await this.redis.zrangebyscore(keys.workers, Date.now(), '+inf');
      const reports = await Promise.all(ids.map((id) => this.redis.hgetall(keys.worker(id))));
      return ids
        .map((id, i) => ({ id, report: reports[i] }))
        .filter(({ report }) => Object.keys(report).length > 0);
    })();
    return within(reading, this.options.requestTimeout, () => {
      reading.catch(() => {});
      throw new Error('Redis did not answer');
    });
  }

  /** Deliveries held per queue and workers per task name, from the live worker reports. */
  private async heldByWorkers(): Promise<{
    workers: number;
    perQueue: Map<string, number>;
    tasks: CogmanTaskWorkers[];
  }> {
    const reports = await this.directory.read();
    const perQueue = new Map<string, number>();
    const byTask = new Map<string, string[]>();
    for (const report of reports) {
      for (const [queue, held] of report.held)
        perQueue.set(queue, (perQueue.get(queue) ?? 0) + held);
      for (const name of report.tasks) {
        const workers = byTask.get(name) ?? [];
        workers.push(report.id);
        byTask.set(name, workers);
      }
    }
    const tasks = [...byTask]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, workers]) => ({ name, workers: workers.sort() }));
    return { workers: reports.length, perQueue, tasks };
  }

  private async metricsSnapshot(): Promise<CogmanMetricsSnapshot> {
    const queues = await this.queues().catch(() => null);
    return {
      offlineTasks: this.offline.size,
      pendingRedisWrites: this.log.pendingWrites,
      activeTasks: this.consumer.activeCount,
      queues:
        queues?.queues.map((q) => ({
          queue: q.name,
          ready: q.ready,
          unacked: q.kind === 'dead-letter' ? null : q.unacked,
          consumers: q.consumers,
        })) ?? null,
    };
  }

  services(): CogmanServices {
    const { options } = this;
    // A process without handlers consumes nothing (see CogmanLifecycle): a producer.
    const consumer = this.registry.names().length > 0 ? this.consumerConnection : null;
    return {
      broker: {
        uri: redactUri(options.amqpUri),
        publisherConnected: this.publisher.connected,
        consumerConnected: consumer ? consumer.connected : null,
      },
      redis: {
        uri: options.redis.description,
        topology: options.redis.topology,
        connected: this.redis.status === 'ready',
      },
      mongo:
        options.mongoUri && this.archive
          ? { uri: redactUri(options.mongoUri), connected: this.archive.connected }
          : null,
      queues: {
        high: [...this.topology.high],
        low: [...this.topology.low],
        deadLetter: this.topology.deadLetter,
      },
      handlers: this.registry.names(),
      paused: this.pauses?.pausedNow() ?? [],
      offlineTasks: this.offline.size,
      pendingRedisWrites: this.log.pendingWrites,
      worker: consumer
        ? {
            running: this.consumer.running,
            consumers: this.consumer.consumerCount,
            queues: this.topology.high.length + this.topology.low.length,
            consumedQueues: (['high', 'low'] as const)
              .filter((priority) => !this.consumer.pausedPriorities.includes(priority))
              .reduce((sum, priority) => sum + this.topology.queues(priority).length, 0),
            activeTasks: this.consumer.activeCount,
            highPriorityConcurrency: options.highPriorityConcurrency,
            lowPriorityConcurrency: options.lowPriorityConcurrency,
            prefetchMultiplier: options.prefetchMultiplier,
          }
        : null,
    };
  }
}
