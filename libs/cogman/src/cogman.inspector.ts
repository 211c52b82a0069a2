import { Inject, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { BrokerConnection } from './broker/broker-connection';
import { TaskConsumer } from './broker/task.consumer';
import { TaskTopology } from './broker/task-topology';
import { CONSUMER_CONNECTION, PUBLISHER_CONNECTION, RESOLVED_OPTIONS } from './cogman.constants';
import { redactUri, type ResolvedCogmanOptions } from './config';
import { COGMAN_REDIS } from './store/redis-connection';
import { OfflineTaskBuffer } from './client/offline-task.buffer';
import { TaskLog } from './store/task-log';
import { TASK_ARCHIVE, type TaskArchive } from './store/task-archive';
import { TaskHandlerRegistry } from './worker/task-handler.registry';

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
  /** Null in a producer-only process. */
  worker: {
    running: boolean;
    /** Queues consumed now; all of them in a healthy worker. */
    consumers: number;
    queues: number;
    activeTasks: number;
    highPriorityConcurrency: number;
    lowPriorityConcurrency: number;
  } | null;
}

@Injectable()
export class CogmanInspector {
  constructor(
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedCogmanOptions,
    @Inject(PUBLISHER_CONNECTION) private readonly publisher: BrokerConnection,
    @Inject(CONSUMER_CONNECTION) private readonly consumerConnection: BrokerConnection | null,
    @Inject(COGMAN_REDIS) private readonly redis: Redis,
    @Inject(TASK_ARCHIVE) private readonly archive: TaskArchive | null,
    private readonly topology: TaskTopology,
    private readonly registry: TaskHandlerRegistry,
    private readonly consumer: TaskConsumer,
    private readonly offline: OfflineTaskBuffer,
    private readonly log: TaskLog,
  ) {}

  services(): CogmanServices {
    const { options } = this;
    return {
      broker: {
        uri: redactUri(options.amqpUri),
        publisherConnected: this.publisher.connected,
        consumerConnected: this.consumerConnection ? this.consumerConnection.connected : null,
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
      worker: options.startWorker
        ? {
            running: this.consumer.running,
            consumers: this.consumer.consumerCount,
            queues: this.topology.high.length + this.topology.low.length,
            activeTasks: this.consumer.activeCount,
            highPriorityConcurrency: options.highPriorityConcurrency,
            lowPriorityConcurrency: options.lowPriorityConcurrency,
          }
        : null,
    };
  }
}

/** One part of Cogman's health, as @nestjs/terminus shows it. */
export interface CogmanHealthStatus {
  status: 'up' | 'down';
  broker: 'up' | 'down';
  redis: 'up' | 'down';
  mongo?: 'up' | 'down';
  consumers?: 'up' | 'down';
  /** Why it is down, when it is. */
  message?: string;
}

/**
 * A health indicator in the @nestjs/terminus style (no dependency on it): whether the broker,
 * Redis and (when configured) MongoDB are connected, and whether this worker consumes its queues.
 *
 * ```ts
 * this.health.check([() => this.cogmanHealth.isHealthy('cogman')]);
 * ```
 */
@Injectable()
export class CogmanHealthIndicator {
  constructor(private readonly inspector: CogmanInspector) {}

  isHealthy(key = 'cogman'): Promise<Record<string, CogmanHealthStatus>> {
    const services = this.inspector.services();
    const updown = (up: boolean): 'up' | 'down' => (up ? 'up' : 'down');
    const result: CogmanHealthStatus = {
      status: 'up',
      broker: updown(
        services.broker.publisherConnected && services.broker.consumerConnected !== false,
      ),
      redis: updown(services.redis.connected),
    };
    if (services.mongo) result.mongo = updown(services.mongo.connected);
    if (services.worker) {
      result.consumers = updown(
        services.worker.running && services.worker.consumers === services.worker.queues,
      );
    }
    const down = (['broker', 'redis', 'mongo', 'consumers'] as const).filter(
      (part) => result[part] === 'down',
    );
    if (down.length > 0) {
      result.status = 'down';
      result.message = `down: ${down.join(', ')}`;
    }
    return Promise.resolve({ [key]: result });
  }
}
