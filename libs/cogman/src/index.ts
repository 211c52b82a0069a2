export { CogmanModule } from './cogman.module';
export type {
  CheckedCogmanOptions,
  CogmanModuleAsyncOptions,
  CogmanOptionsFactory,
} from './cogman.module-definition';
export type { CogmanDashboardOptions, CogmanModuleExtras, CogmanRestOptions } from './config';
export { CogmanClient } from './client/cogman.client';
export type { CogmanTaskLimits, WaitForResultOptions } from './client/cogman.client';
export { CogmanHealthIndicator } from './inspector/cogman-health.indicator';
export type { CogmanHealthStatus } from './inspector/cogman-health.indicator';
export type {
  CogmanQueues,
  CogmanQueueState,
  CogmanServices,
  CogmanTaskWorkers,
  CogmanWorkerReport,
} from './inspector/cogman.inspector';
export { CogmanErrorFilter } from './rest/rest-exception.filter';
export type { RestErrorBody } from './rest/rest-exception.filter';
export { CogmanMetrics } from './metrics/cogman.metrics';
export { TASK_LIST_MAX_LIMIT } from './store/task-archive';
export type {
  TaskCountBucket,
  TaskCountQuery,
  TaskListPage,
  TaskListQuery,
} from './store/task-archive';
export { CogmanWorker } from './worker/cogman.worker';
export type { CogmanPauses } from './worker/queue-pauses';
export { TaskHandler } from './decorators/task-handler.decorator';
export { OnTaskEvent } from './decorators/task-event.decorator';
export { COGMAN_CONTEXT_TYPE } from './explorer/task-handler.enhancers';
export type { OnTaskEventOptions } from './decorators/task-event.decorator';
export type { TaskHandlerOptions } from './decorators/task-handler.decorator';
export { COGMAN_DEFAULTS, redactUri } from './config';
export type { CogmanModuleOptions, CogmanRedisOption, RedisTopology } from './config';
export {
  ArchiveBufferFullError,
  ArchiveNotConfiguredError,
  ArchiveRecordRefusedError,
  ArchiveUnavailableError,
  BrokerUnavailableError,
  ClientClosedError,
  ClientNotStartedError,
  CogmanError,
  DependencyMissingError,
  OfflineBufferFullError,
  OptionsInvalidError,
  ScheduleNotFoundError,
  StoreUnavailableError,
  TaskCancelledError,
  TaskEventListenerInvalidError,
  TaskFailedError,
  TaskHandlerDuplicateError,
  TaskHandlerInvalidError,
  TaskInvalidError,
  TaskNotFoundError,
  TaskPublishError,
  TaskQueryInvalidError,
  TasksNotSentError,
  TaskStatusConflictError,
  TaskTimeoutError,
  TaskUnrecoverableError,
  TaskWaitTimeoutError,
  WorkerShutdownError,
} from './errors';
export { DEFAULT_BACKOFF } from './scheduler/backoff';
export { DEAD_LETTER_HEADERS } from './broker/task.publisher';
export { TASK_EVENT_TYPES, TASK_HEADERS, TASK_STATUSES } from './task';
export type {
  BackoffFunction,
  BackoffPolicy,
  CogmanTaskHandler,
  CogmanTaskMap,
  SendTaskOptions,
  TaskName,
  TaskPayloadOf,
  TypedSendTaskOptions,
  TaskContext,
  TaskEvent,
  TaskEventOf,
  TaskEventType,
  TaskHandlerFunction,
  TaskInfo,
  TaskPriority,
  TaskRecord,
  TaskStatus,
  TaskHandlerSchedule,
  TaskScheduleDefinition,
  TaskScheduleTask,
  TaskScheduleTiming,
  UniqueTaskOptions,
} from './task';
export type { CogmanSchedule } from './client/task-schedules';
export type { ScheduleSource } from './store/schedule.store';
