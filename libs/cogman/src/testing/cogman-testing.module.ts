import { Module, type DynamicModule, type Provider } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { TASK_BROKER } from '../broker/task-broker';
import { TaskTopology } from '../broker/task-topology';
import { CogmanClient } from '../client/cogman.client';
import {
  RESOLVED_OPTIONS,
  resolveCogmanOptions,
  type CogmanModuleOptions,
  type ResolvedCogmanOptions,
} from '../config';
import { OfflineTaskBuffer } from '../dispatch/offline-task.buffer';
import { TaskDispatcher } from '../dispatch/task.dispatcher';
import { TaskHandlerExplorer } from '../explorer/task-handler.explorer';
import { TaskEventExplorer } from '../explorer/task-event.explorer';
import { TaskHandlerEnhancers } from '../explorer/task-handler.enhancers';
import { TaskEvents } from '../worker/task-events';
import { TaskResultWatcher } from '../store/task-result.watcher';
import { TaskLimits } from '../store/task-limits';
import { CogmanInspector } from '../inspector/cogman.inspector';
import { CogmanMetrics } from '../metrics/cogman.metrics';
import { TaskScheduler } from '../scheduler/task.scheduler';
import { COGMAN_REDIS } from '../store/redis-connection';
import { TASK_ARCHIVE } from '../store/task-archive';
import { TaskLog } from '../store/task-log';
import { TASK_LOG_STORE } from '../store/task-log.store';
import { COGMAN_CLOCK } from '../util/clock';
import { CogmanWorker } from '../worker/cogman.worker';
import { TaskCancellation } from '../worker/task-cancellation';
import { QueuePauses } from '../worker/queue-pauses';
import { UniqueKeyStore } from '../store/unique-keys.store';
import { UniqueTasks } from '../client/unique-tasks';
import { TaskSchedules } from '../client/task-schedules';
import { RecurringTaskScheduler } from '../scheduler/recurring-task.scheduler';
import { ScheduleBackup } from '../store/schedule-backup';
import { SCHEDULE_STORE } from '../store/schedule.store';
import { InMemoryScheduleStore } from './in-memory-schedule.store';
import { TaskHandlerRegistry } from '../worker/task-handler.registry';
import { TaskConsumer } from '../worker/task.consumer';
import { TaskExecutor } from '../worker/task.executor';
import { AttemptProgress } from '../worker/attempt-progress';
import { CogmanTesting } from './cogman.testing';
import { InMemoryTaskBroker } from './in-memory-task.broker';
import { InMemoryTaskLogStore } from './in-memory-task-log.store';
import { InMemoryInspector } from './in-memory.inspector';
import { TestClock } from './test-clock';

/** Options of `CogmanTestingModule.forRoot`. */
export interface CogmanTestingOptions extends Partial<
  Pick<
    CogmanModuleOptions,
    'namespace' | 'taskTimeout' | 'highPriorityQueueCount' | 'lowPriorityQueueCount'
  >
> {
  /**
   * Run each task as it is sent: `sendTask` resolves once its handler (and any retry due at once)
   * has run. Default false: tasks wait until `CogmanTesting.drain()` or `runAll()`.
   */
  runOnSend?: boolean;
  /** Make `CogmanClient`, `CogmanWorker` and `CogmanTesting` injectable everywhere. Default true. */
  isGlobal?: boolean;
}

/** The worker's state as `CogmanWorker` reads it: always running, nothing in flight between runs. */
const consumerState: Pick<TaskConsumer, 'running' | 'activeCount'> = {
  running: true,
  activeCount: 0,
};

/**
 * Cogman without RabbitMQ or Redis, for an application's unit tests: import it where the
 * application imports `CogmanModule.forRoot`, provide the handlers, send tasks with `CogmanClient`
 * and run them with `CogmanTesting` (`drain`, `advance`, `runAll`). The broker and the task log
 * are in memory, and time moves only when the test moves it.
 */
@Module({})
export class CogmanTestingModule {
  static forRoot(options: CogmanTestingOptions = {}): DynamicModule {
    const { runOnSend = false, isGlobal = true, ...cogman } = options;
    const providers: Provider[] = [
      {
        provide: RESOLVED_OPTIONS,
        useValue: resolveCogmanOptions({
          amqpUri: 'amqp://cogman-testing',
          redisUri: 'redis://cogman-testing',
          // One worker, the application's: a task it has no handler for is dead-lettered at once.
          unknownTaskGracePeriod: 0,
          ...cogman,
        }),
      },
      { provide: COGMAN_CLOCK, useClass: TestClock },
      { provide: TASK_LOG_STORE, useClass: InMemoryTaskLogStore },
      { provide: TASK_ARCHIVE, useValue: null },
      { provide: COGMAN_REDIS, useValue: null },
      { provide: CogmanMetrics, useValue: null },
      TaskLog,
      {
        // No Redis: the in-memory store tells the watcher of each outcome.
        provide: TaskResultWatcher,
        inject: [TASK_LOG_STORE, RESOLVED_OPTIONS],
        useFactory: (store: InMemoryTaskLogStore, options: ResolvedCogmanOptions) => {
          const watcher = new TaskResultWatcher(null, options);
          store.onFinished = (taskId) => watcher.notify(taskId);
          return watcher;
        },
      },
      TaskLimits,
      TaskTopology,
      InMemoryTaskBroker,
      { provide: TASK_BROKER, useExisting: InMemoryTaskBroker },
      TaskDispatcher,
      OfflineTaskBuffer,
      TaskScheduler,
      TaskHandlerRegistry,
      TaskHandlerExplorer,
      TaskEvents,
      TaskEventExplorer,
      TaskHandlerEnhancers,
      TaskExecutor,
      AttemptProgress,
      TaskCancellation,
      QueuePauses,
      UniqueKeyStore,
      UniqueTasks,
      { provide: SCHEDULE_STORE, useClass: InMemoryScheduleStore },
      ScheduleBackup,
      RecurringTaskScheduler,
      TaskSchedules,
      { provide: CogmanInspector, useClass: InMemoryInspector },
      { provide: TaskConsumer, useValue: consumerState },
      CogmanClient,
      CogmanWorker,
      {
        provide: CogmanTesting,
        inject: [
          InMemoryTaskBroker,
          TaskExecutor,
          TaskScheduler,
          TaskLog,
          TASK_LOG_STORE,
          COGMAN_CLOCK,
          QueuePauses,
          RecurringTaskScheduler,
          TaskSchedules,
        ],
        useFactory: (...args: ConstructorParameters<typeof CogmanTesting>) => {
          const testing = new CogmanTesting(...args);
          if (runOnSend) args[0].afterPublish = () => testing.runIfIdle();
          return testing;
        },
      },
    ];
    return {
      module: CogmanTestingModule,
      global: isGlobal,
      imports: [DiscoveryModule],
      providers,
      exports: [CogmanClient, CogmanWorker, CogmanTesting],
    };
  }
}
