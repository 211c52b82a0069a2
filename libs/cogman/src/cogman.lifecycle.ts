import {
  BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnApplicationShutdown,
  Optional,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { BrokerConnection } from './broker/broker-connection';
import { TaskConsumer } from './worker/task.consumer';
import { TaskPublisher } from './broker/task.publisher';
import { OfflineTaskBuffer } from './dispatch/offline-task.buffer';
import { TaskDispatcher } from './dispatch/task.dispatcher';
import { TaskTopology } from './broker/task-topology';
import { CONSUMER_CONNECTION, PUBLISHER_CONNECTION } from './broker/broker.tokens';
import {
  MODULE_SHAPE,
  RESOLVED_OPTIONS,
  type CogmanModuleShape,
  type ResolvedCogmanOptions,
} from './config';
import { TaskScheduler } from './scheduler/task.scheduler';
import { TaskLog } from './store/task-log';
import { TaskCancellation } from './worker/task-cancellation';
import { QueuePauses } from './worker/queue-pauses';
import { RecurringTaskScheduler } from './scheduler/recurring-task.scheduler';
import { TaskSchedules } from './client/task-schedules';
import { TaskHandlerRegistry } from './worker/task-handler.registry';
import { COGMAN_REDIS, waitForRedis, type CogmanRedis } from './store/redis-connection';
import { LegacyRedisKeys } from './store/redis-legacy-keys';
import { TASK_ARCHIVE, type ArchiveLifecycle } from './store/task-archive';
import { WorkerStatusReporter } from './worker/worker-status.reporter';

/** Signals Nest's `enableShutdownHooks()` listens to, of which a worker should see one. */
const SHUTDOWN_SIGNALS = ['SIGTERM', 'SIGINT'] as const;
const SHUTDOWN_HOOKS_CHECK_DELAY = 1000;

/**
 * Starts and stops Cogman in order. Connections open at bootstrap (a failure closes whatever
 * opened and fails the start; MongoDB is never waited for); at shutdown the worker drains while
 * Redis and the broker are still up, then pending sends finish, the archive writes what it
 * holds, then channels and connections close.
 */
@Injectable()
export class CogmanLifecycle
  implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown
{
  private readonly logger = new Logger('Cogman');
  private closing?: Promise<void>;

  constructor(
    @Inject(PUBLISHER_CONNECTION) private readonly publisherConnection: BrokerConnection,
    @Inject(CONSUMER_CONNECTION) private readonly consumerConnection: BrokerConnection | null,
    @Inject(COGMAN_REDIS) private readonly redis: CogmanRedis,
    @Inject(TASK_ARCHIVE) private readonly archive: ArchiveLifecycle | null,
    private readonly publisher: TaskPublisher,
    private readonly consumer: TaskConsumer,
    private readonly dispatcher: TaskDispatcher,
    private readonly offline: OfflineTaskBuffer,
    private readonly log: TaskLog,
    private readonly topology: TaskTopology,
    private readonly registry: TaskHandlerRegistry,
    private readonly scheduler: TaskScheduler,
    private readonly cancellation: TaskCancellation,
    private readonly reporter: WorkerStatusReporter,
    private readonly legacy: LegacyRedisKeys,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedCogmanOptions,
    private readonly pauses: QueuePauses,
    private readonly recurring: RecurringTaskScheduler,
    private readonly schedules: TaskSchedules,
    @Optional() @Inject(MODULE_SHAPE) private readonly shape: CogmanModuleShape | null = null,
    @Optional()
    @Inject(HttpAdapterHost)
    private readonly adapterHost: HttpAdapterHost | null = null,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    this.publisher.starting();
    try {
      // Connects in the background: tasks flow whether or not MongoDB is reachable.
      this.archive?.start();
      // A process without handlers consumes nothing: a task it took could only be handed back.
      const consumer = this.registry.names().length > 0 ? this.consumerConnection : null;
      // Redis and the broker are waited for together, each up to connectionTimeout.
      await Promise.all([
        waitForRedis(this.redis, this.options),
        this.publisherConnection.connect(),
        consumer?.connect(),
      ]);
      await this.publisher.open();
      // Scheduled and cancelled tasks of Cogman 0.1's keys move to today's, in the background.
      this.legacy.start();
      // Cancellations are known before the first delivery, so none needs its record read.
      if (consumer) await this.cancellation.listen(this.options.requestTimeout);
      // Paused priorities are known before the consumers start: a worker started while paused stays so.
      this.pauses.onChange((priority, paused) => {
        const toggling = paused ? this.consumer.pause(priority) : this.consumer.resume(priority);
        toggling.catch((error) => this.logger.warn(`Could not pause or resume: ${String(error)}`));
      });
      await this.pauses.listen(this.options.requestTimeout);
      if (consumer) {
        await this.consumer.start();
        this.reporter.start();
      }
      this.scheduler.start();
      await this.schedules.reconcile();
      this.recurring.start();
      this.offline.start();
      this.logger.log(this.describe());
      this.hint(!!consumer);
    } catch (error) {
      this.publisher.fail(error);
      await this.close();
      throw error;
    }
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.consumer.drain();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }

  /** Warns of a set-up that looks right but does not do what it says. */
  private hint(consuming: boolean): void {
    if (this.shape?.rest.mounted && !this.adapterHost?.httpAdapter) {
      this.logger.warn(
        `startRestServer is set, but this application has no HTTP server (NestFactory.createApplicationContext): the REST API under /${this.shape.rest.prefix} is not served. Create the application with NestFactory.create() and an HTTP adapter (@nestjs/platform-express), or leave startRestServer out.`,
      );
    }
    if (!consuming) return;
    // Checked a moment later: createApplicationContext() has started Cogman before the line
    // after it can call enableShutdownHooks().
    setTimeout(() => {
      if (this.closing || SHUTDOWN_SIGNALS.some((signal) => process.listenerCount(signal) > 0)) {
        return;
      }
      this.logger.warn(
        'This worker does not stop on SIGTERM or SIGINT: call app.enableShutdownHooks() so that a deploy lets running tasks finish (shutdownTimeout) and hands the others back, instead of killing them mid-task.',
      );
    }, SHUTDOWN_HOOKS_CHECK_DELAY).unref();
  }

  private describe(): string {
    const { high, low } = this.topology;
    const handlers = this.registry.names();
    const worker = !this.consumerConnection
      ? 'producer only'
      : handlers.length === 0
        ? 'producer only: no task handlers are registered in this process, so it consumes no queue'
        : `worker consuming ${high.length} high and ${low.length} low priority queue(s) for ${handlers.join(', ')}`;
    return `Cogman started (${this.options.namespace ? `namespace ${this.options.namespace}, ` : ''}${worker})`;
  }

  private close(): Promise<void> {
    this.closing ??= (async () => {
      this.pauses.close();
      await this.recurring.stop();
      await this.scheduler.stop();
      await this.consumer.drain();
      await this.reporter.stop();
      await this.dispatcher.close();
      this.publisher.close();
      await this.log.flush(this.options.requestTimeout);
      this.log.close();
      await this.cancellation.close();
      this.legacy.stop();
      await this.archive?.flush(this.options.shutdownTimeout);
      await this.consumerConnection?.close();
      await this.publisherConnection.close();
      await quit(this.redis);
      await this.archive?.close();
      this.logger.log('Cogman stopped');
    })();
    return this.closing;
  }
}

async function quit(redis: CogmanRedis): Promise<void> {
  if (redis.status === 'end') return;
  try {
    if (redis.status === 'ready') {
      await redis.quit();
      return;
    }
  } catch {
    // Fall through to a hard disconnect.
  }
  redis.disconnect();
}
