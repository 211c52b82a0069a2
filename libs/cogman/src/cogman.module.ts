import { DynamicModule, Module, Provider } from '@nestjs/common';
import { CogmanMetrics } from './metrics/cogman.metrics';
import { WorkerStatusReporter } from './worker/worker-status.reporter';
import { WorkerDirectory } from './worker/worker-directory';
import { DiscoveryModule } from '@nestjs/core';
import { BrokerConnection } from './broker/broker-connection';
import { TaskConsumer } from './worker/task.consumer';
import { TASK_BROKER } from './broker/task-broker';
import { TaskPublisher } from './broker/task.publisher';
import { TaskTopology } from './broker/task-topology';
import { CogmanClient } from './client/cogman.client';
import { OfflineTaskBuffer } from './dispatch/offline-task.buffer';
import { TaskDispatcher } from './dispatch/task.dispatcher';
import { CONSUMER_CONNECTION, PUBLISHER_CONNECTION } from './broker/broker.tokens';
import { CogmanHealthIndicator } from './inspector/cogman-health.indicator';
import { CogmanInspector } from './inspector/cogman.inspector';
import { CogmanLifecycle } from './cogman.lifecycle';
import {
  COGMAN_ASYNC_OPTIONS_TYPE,
  COGMAN_MODULE_OPTIONS,
  COGMAN_OPTIONS_TYPE,
  CogmanConfigurableModule,
  type CogmanModuleAsyncOptions,
} from './cogman.module-definition';
import {
  resolveCogmanOptions,
  type CogmanModuleOptions,
  type ResolvedCogmanOptions,
  RESOLVED_OPTIONS,
} from './config';
import { TaskHandlerExplorer } from './explorer/task-handler.explorer';
import { TaskEventExplorer } from './explorer/task-event.explorer';
import { TaskHandlerEnhancers } from './explorer/task-handler.enhancers';
import { TaskEvents } from './worker/task-events';
import { archiveProviders } from './store/archive.providers';
import { redisConnectionProvider } from './store/redis-connection';
import { LegacyRedisKeys } from './store/redis-legacy-keys';
import { RedisTaskLogStore } from './store/redis-task-log.store';
import { COGMAN_MONGO_CONNECTION } from './store/task-archive';
import { TaskLog } from './store/task-log';
import { TaskResultWatcher } from './store/task-result.watcher';
import { TaskLimits } from './store/task-limits';
import { TASK_LOG_STORE } from './store/task-log.store';
import { CogmanWorker } from './worker/cogman.worker';
import { TaskHandlerRegistry } from './worker/task-handler.registry';
import { TaskExecutor } from './worker/task.executor';
import { AttemptProgress } from './worker/attempt-progress';
import { TaskCancellation } from './worker/task-cancellation';
import { QueuePauses } from './worker/queue-pauses';
import { UniqueKeyStore } from './store/unique-keys.store';
import { UniqueTasks } from './client/unique-tasks';
import { TaskSchedules } from './client/task-schedules';
import { SCHEDULE_STORE, ScheduleStore } from './store/schedule.store';
import { ScheduleBackup } from './store/schedule-backup';
import { RecurringTaskScheduler } from './scheduler/recurring-task.scheduler';
import { TaskScheduler } from './scheduler/task.scheduler';

const resolvedOptions: Provider = {
  provide: RESOLVED_OPTIONS,
  inject: [COGMAN_MODULE_OPTIONS],
  useFactory: (options: CogmanModuleOptions): ResolvedCogmanOptions =>
    resolveCogmanOptions(options),
};

/** Prometheus metrics when `metrics` is set (prom-client is loaded only then), else null. */
const metrics: Provider = {
  provide: CogmanMetrics,
  inject: [RESOLVED_OPTIONS],
  useFactory: (options: ResolvedCogmanOptions) => (options.metrics ? new CogmanMetrics() : null),
};

const connections: Provider[] = [
  {
    provide: PUBLISHER_CONNECTION,
    inject: [RESOLVED_OPTIONS],
    useFactory: (options: ResolvedCogmanOptions) =>
      new BrokerConnection('cogman-publisher', options),
  },
  {
    provide: CONSUMER_CONNECTION,
    inject: [RESOLVED_OPTIONS],
    useFactory: (options: ResolvedCogmanOptions) =>
      // The publisher's connection says what boot waits for; this one would repeat it.
      options.startWorker
        ? new BrokerConnection('cogman-consumer', options, { reportsWaiting: false })
        : null,
  },
];

/**
 * Background tasks on RabbitMQ and Redis. `CogmanModule.forRoot({ amqpUri, redisUri })` (or `redis`) once in
 * the root module; then `@TaskHandler('name')` on providers and `CogmanClient` to send tasks.
 */
@Module({})
export class CogmanModule extends CogmanConfigurableModule {
  static forRoot(options: typeof COGMAN_OPTIONS_TYPE): DynamicModule {
    return CogmanModule.assemble(super.forRoot(options));
  }

  /**
   * Options from a factory (`useFactory` with `inject`, `useClass` or `useExisting`), e.g. from
   * `ConfigService`; the factory's result is type-checked against `CogmanModuleOptions`.
   */
  static forRootAsync<R extends CogmanModuleOptions = CogmanModuleOptions>(
    options: CogmanModuleAsyncOptions<R>,
  ): DynamicModule {
    return CogmanModule.assemble(
      super.forRootAsync(options as unknown as typeof COGMAN_ASYNC_OPTIONS_TYPE),
    );
  }

  private static assemble(definition: DynamicModule): DynamicModule {
    return {
      ...definition,
      imports: [...(definition.imports ?? []), DiscoveryModule],
      providers: [
        ...(definition.providers ?? []),
        resolvedOptions,
        redisConnectionProvider,
        ...connections,
        { provide: TASK_LOG_STORE, useClass: RedisTaskLogStore },
        LegacyRedisKeys,
        ...archiveProviders,
        TaskLog,
        TaskResultWatcher,
        TaskLimits,
        TaskTopology,
        TaskPublisher,
        { provide: TASK_BROKER, useExisting: TaskPublisher },
        TaskDispatcher,
        OfflineTaskBuffer,
        TaskHandlerRegistry,
        TaskHandlerExplorer,
        TaskEvents,
        TaskEventExplorer,
        TaskHandlerEnhancers,
        TaskExecutor,
        AttemptProgress,
        TaskConsumer,
        WorkerStatusReporter,
        WorkerDirectory,
        metrics,
        TaskScheduler,
        TaskCancellation,
        QueuePauses,
        UniqueKeyStore,
        UniqueTasks,
        ScheduleStore,
        { provide: SCHEDULE_STORE, useExisting: ScheduleStore },
        ScheduleBackup,
        RecurringTaskScheduler,
        TaskSchedules,
        CogmanLifecycle,
        CogmanInspector,
        CogmanHealthIndicator,
        CogmanClient,
        CogmanWorker,
      ],
      exports: [
        CogmanClient,
        CogmanWorker,
        CogmanHealthIndicator,
        CogmanMetrics,
        COGMAN_MONGO_CONNECTION,
      ],
    };
  }
}
