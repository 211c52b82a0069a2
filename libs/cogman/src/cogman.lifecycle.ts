import {
  BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnApplicationShutdown,
} from '@nestjs/common';
import type { BrokerConnection } from './broker/broker-connection';
import { TaskConsumer } from './worker/task.consumer';
import { TaskPublisher } from './broker/task.publisher';
import { OfflineTaskBuffer } from './dispatch/offline-task.buffer';
import { TaskDispatcher } from './dispatch/task.dispatcher';
import { TaskTopology } from './broker/task-topology';
import { CONSUMER_CONNECTION, PUBLISHER_CONNECTION } from './broker/broker.tokens';
import { RESOLVED_OPTIONS, type ResolvedCogmanOptions } from './config';
import { TaskScheduler } from './scheduler/task.scheduler';
import { TaskLog } from './store/task-log';
import { TaskCancellation } from './worker/task-cancellation';
import { QueuePauses } from './worker/queue-pauses';
import { RecurringTaskScheduler } from './scheduler/recurring-task.scheduler';
import { TaskSchedules } from './client/task-schedules';
import { TaskHandlerRegistry } from './worker/task-handler.registry';
import { COGMAN_REDIS, type CogmanRedis } from './store/redis-connection';
import { LegacyRedisKeys } from './store/redis-legacy-keys';
import { TASK_ARCHIVE, type ArchiveLifecycle } from './store/task-archive';
import { WorkerStatusReporter } from './worker/worker-status.reporter';

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
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    try {
      if (this.redis.status === 'wait') {
        // Failures are logged by the client's watcher and retried; the broker is what boot needs.
        this.redis.connect().catch(() => {});
      }
      // Scheduled and cancelled tasks of Cogman 0.1's keys move to today's, in the background.
      this.legacy.start();
      // Connects in the background: tasks flow whether or not MongoDB is reachable.
      this.archive?.start();
      await Promise.all([this.publisherConnection.connect(), this.consumerConnection?.connect()]);
      await this.publisher.open();
      // Cancellations are known before the first delivery, so none needs its record read.
      if (this.consumerConnection) await this.cancellation.listen(this.options.requestTimeout);
      // Paused priorities are known before the consumers start: a worker started while paused stays so.
      this.pauses.onChange((priority, paused) => {
        const toggling = paused ? this.consumer.pause(priority) : this.consumer.resume(priority);
        toggling.catch((error) => this.logger.warn(`Could not pause or resume: ${String(error)}`));
      });
      await this.pauses.listen(this.options.requestTimeout);
      await this.consumer.start();
      if (this.consumerConnection) this.reporter.start();
      this.scheduler.start();
      await this.schedules.reconcile();
      this.recurring.start();
      this.offline.start();
      this.logger.log(this.describe());
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

  private describe(): string {
    const { high, low } = this.topology;
    const handlers = this.registry.names();
    const worker = this.consumerConnection
      ? `worker consuming ${high.length} high and ${low.length} low priority queue(s) for ${handlers.length ? handlers.join(', ') : 'no handlers'}`
      : 'producer only';
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
