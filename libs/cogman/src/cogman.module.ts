import { DynamicModule, Module, Provider } from '@nestjs/common';
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
  inject: [COGMAN_MODULE_OPTIONS],
  useFactory: (options: CogmanModuleOptions) => resolveCogmanOptions(options),
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
        TaskScheduler,
        TaskCancellation,
        CogmanLifecycle,
        CogmanInspector,
        CogmanHealthIndicator,
        CogmanClient,
        CogmanWorker,
      ],
      exports: [CogmanClient, CogmanWorker, CogmanHealthIndicator, COGMAN_MONGO_CONNECTION],
    };
  }
}
