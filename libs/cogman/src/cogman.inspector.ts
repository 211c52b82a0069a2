import { Inject, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { BrokerConnection } from './broker/broker-connection';
import { TaskConsumer } from './broker/task.consumer';
import { TaskTopology } from './broker/task-topology';
import { CONSUMER_CONNECTION, PUBLISHER_CONNECTION, RESOLVED_OPTIONS } from './cogman.constants';
import { redactUri, type ResolvedCogmanOptions } from './config';
import { COGMAN_REDIS } from './store/redis-connection';
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
  /** Null in a producer-only process. */
  worker: {
    running: boolean;
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
      worker: options.startWorker
        ? {
            running: this.consumer.running,
            activeTasks: this.consumer.activeCount,
            highPriorityConcurrency: options.highPriorityConcurrency,
            lowPriorityConcurrency: options.lowPriorityConcurrency,
          }
        : null,
    };
  }
}
