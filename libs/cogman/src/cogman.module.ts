import { DynamicModule, Module, Provider } from '@nestjs/common';
import { OptionsInvalidError } from './errors';
import { CogmanMetrics } from './metrics/cogman.metrics';
import { REST_MOUNT, type RestMount } from './rest/rest.constants';
import { WorkerStatusReporter } from './worker/worker-status.reporter';
import { DiscoveryModule } from '@nestjs/core';
import type { Connection } from 'mongoose';
import { BrokerConnection } from './broker/broker-connection';
import { TaskConsumer } from './broker/task.consumer';
import { TaskPublisher } from './broker/task.publisher';
import { TaskTopology } from './broker/task-topology';
import { CogmanClient } from './client/cogman.client';
import { OfflineTaskBuffer } from './client/offline-task.buffer';
import { TaskDispatcher } from './client/task.dispatcher';
import { CONSUMER_CONNECTION, PUBLISHER_CONNECTION, RESOLVED_OPTIONS } from './cogman.constants';
import { CogmanHealthIndicator, CogmanInspector } from './cogman.inspector';
import { CogmanLifecycle } from './cogman.lifecycle';
import {
  COGMAN_ASYNC_OPTIONS_TYPE,
  COGMAN_MODULE_OPTIONS,
  COGMAN_OPTIONS_TYPE,
  CogmanConfigurableModule,
} from './cogman.module-definition';
import {
  resolveCogmanOptions,
  type CogmanModuleOptions,
  type ResolvedCogmanOptions,
} from './config';
import { TaskHandlerExplorer } from './explorer/task-handler.explorer';
import { COGMAN_MONGO_CONNECTION, mongoConnectionProvider } from './store/mongo-connection';
import { MongoTaskArchive } from './store/mongo-task-archive';
import { redisConnectionProvider } from './store/redis-connection';
import { RedisTaskLogStore } from './store/redis-task-log.store';
import { TASK_ARCHIVE, type TaskArchive } from './store/task-archive';
import { TaskLog } from './store/task-log';
import { TASK_LOG_STORE } from './store/task-log.store';
import { CogmanWorker } from './worker/cogman.worker';
import { TaskHandlerRegistry } from './worker/task-handler.registry';
import { TaskExecutor } from './worker/task.executor';
import { TaskCancellation } from './worker/task-cancellation';
import { TaskScheduler } from './scheduler/task.scheduler';

const resolvedOptions: Provider = {
  provide: RESOLVED_OPTIONS,
  inject: [COGMAN_MODULE_OPTIONS, REST_MOUNT],
  useFactory: (options: CogmanModuleOptions, rest: RestMount): ResolvedCogmanOptions => {
    const resolved = resolveCogmanOptions(options);
    // Controllers are fixed when the module is defined, before an async factory has run.
    if (resolved.startRestServer !== rest.mounted && options.startRestServer !== undefined) {
      throw new OptionsInvalidError(
        'startRestServer',
        String(options.startRestServer),
        rest.mounted
          ? 'the module was defined with startRestServer: true (the REST API is mounted); remove startRestServer from what useFactory returns'
          : 'the REST API is mounted when the module is defined, before useFactory runs: give startRestServer: true (and rest: { prefix, guards }) at the top level of forRootAsync({ startRestServer: true, useFactory }), not in what useFactory returns',
      );
    }
    return { ...resolved, startRestServer: rest.mounted };
  },
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
      options.startWorker ? new BrokerConnection('cogman-consumer', options) : null,
  },
];

/** The MongoDB archive when `mongoUri` is set, else null (the Redis log alone). */
const archive: Provider = {
  provide: TASK_ARCHIVE,
  inject: [COGMAN_MONGO_CONNECTION, RESOLVED_OPTIONS],
  useFactory: (
    connection: Connection | null,
    options: ResolvedCogmanOptions,
  ): TaskArchive | null => (connection ? new MongoTaskArchive(connection, options) : null),
};

/**
 * Background tasks on RabbitMQ and Redis. `CogmanModule.forRoot({ amqpUri, redisUri })` once in
 * the root module; then `@TaskHandler('name')` on providers and `CogmanClient` to send tasks.
 */
@Module({})
export class CogmanModule extends CogmanConfigurableModule {
  static forRoot(options: typeof COGMAN_OPTIONS_TYPE): DynamicModule {
    return CogmanModule.assemble(super.forRoot(options));
  }

  static forRootAsync(options: typeof COGMAN_ASYNC_OPTIONS_TYPE): DynamicModule {
    return CogmanModule.assemble(super.forRootAsync(options));
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
        mongoConnectionProvider,
        archive,
        TaskLog,
        TaskTopology,
        TaskPublisher,
        TaskDispatcher,
        OfflineTaskBuffer,
        TaskHandlerRegistry,
        TaskHandlerExplorer,
        TaskExecutor,
        TaskConsumer,
        WorkerStatusReporter,
        CogmanMetrics,
        TaskScheduler,
        TaskCancellation,
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
