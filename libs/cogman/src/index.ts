export { CogmanModule } from './cogman.module';
export type { CogmanModuleExtras } from './cogman.module-definition';
export { CogmanClient } from './client/cogman.client';
export type { CogmanServices } from './cogman.inspector';
export { CogmanWorker } from './worker/cogman.worker';
export { TaskHandler } from './decorators/task-handler.decorator';
export type { TaskHandlerOptions } from './decorators/task-handler.decorator';
export { COGMAN_DEFAULTS, redactUri } from './config';
export type { CogmanModuleOptions } from './config';
export {
  ArchiveBufferFullError,
  ArchiveRecordRefusedError,
  ArchiveUnavailableError,
  BrokerUnavailableError,
  ClientClosedError,
  CogmanError,
  OptionsInvalidError,
  TaskHandlerDuplicateError,
  TaskHandlerInvalidError,
  TaskInvalidError,
  TaskPublishError,
  TaskQueryInvalidError,
  TasksNotSentError,
} from './errors';
export { DEAD_LETTER_HEADERS } from './broker/task.publisher';
export { TASK_HEADERS, TASK_STATUSES } from './task';
export type {
  CogmanTaskHandler,
  SendTaskOptions,
  TaskContext,
  TaskHandlerFunction,
  TaskInfo,
  TaskPriority,
  TaskRecord,
  TaskStatus,
} from './task';
