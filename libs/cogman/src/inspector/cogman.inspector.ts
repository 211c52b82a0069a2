import { Inject, Injectable, Optional } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { BrokerConnection } from '../broker/broker-connection';
import { TaskConsumer } from '../worker/task.consumer';
import { TaskTopology } from '../broker/task-topology';
import { CONSUMER_CONNECTION, PUBLISHER_CONNECTION } from '../broker/broker.tokens';
import { redactUri, type ResolvedCogmanOptions, RESOLVED_OPTIONS } from '../config';
import { COGMAN_REDIS } from '../store/redis-connection';
import { OfflineTaskBuffer } from '../dispatch/offline-task.buffer';
import { TaskLog } from '../store/task-log';
import { TASK_ARCHIVE, type ArchivePresence } from '../store/task-archive';
import { TaskHandlerRegistry } from '../worker/task-handler.registry';
import { CogmanMetrics, type CogmanMetricsSnapshot } from '../metrics/cogman.metrics';
import { WORKER_REPORT_INTERVAL } from '../worker/worker-directory';
import { WorkerDirectory } from '../worker/worker-directory';

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
}

/** What Cogman is connected to and runs in this process (URIs without passwords). */
export interface CogmanServices {
  broker: { uri: string; publisherConnected: boolean; consumerConnected: boolean | null };
  redis: { uri: string; connected: boolean };
  /** Null when no `mongoUri` is configured. */
  mongo: { uri: string; connected: boolean } | null;
  queues: { high: string[]; low: string[]; deadLetter: string };
  handlers: string[];
  /** Tasks accepted while the broker was unreachable, waiting for it. */
  offlineTasks: number;
  /** Status writes waiting for Redis. */
  pendingRedisWrites: number;
  /** Null in a producer-only process (`startWorker: false`, or no handlers registered). */
  worker: {
    running: boolean;
    /** Queues consumed now; all of them in a healthy worker. */
    consumers: number;
    queues: number;
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
    @Inject(COGMAN_REDIS) private readonly redis: Redis,
    @Inject(TASK_ARCHIVE) private readonly archive: ArchivePresence | null,
    private readonly topology: TaskTopology,
    private readonly registry: TaskHandlerRegistry,
    private readonly consumer: TaskConsumer,
    private readonly offline: OfflineTaskBuffer,
    private readonly log: TaskLog,
    private readonly directory: WorkerDirectory,
    @Optional() @Inject(CogmanMetrics) metrics: CogmanMetrics | null = null,
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
    const [checks, held] = await Promise.all([
      this.publisher.checkQueues([...high, ...low, deadLetter]),
      this.heldByWorkers().catch(() => null),
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
    };
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
      redis: { uri: redactUri(options.redisUri), connected: this.redis.status === 'ready' },
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
      offlineTasks: this.offline.size,
      pendingRedisWrites: this.log.pendingWrites,
      worker: consumer
        ? {
            running: this.consumer.running,
            consumers: this.consumer.consumerCount,
            queues: this.topology.high.length + this.topology.low.length,
            activeTasks: this.consumer.activeCount,
            highPriorityConcurrency: options.highPriorityConcurrency,
            lowPriorityConcurrency: options.lowPriorityConcurrency,
            prefetchMultiplier: options.prefetchMultiplier,
          }
        : null,
    };
  }
}
