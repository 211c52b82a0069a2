import * as api from './index';

describe('public API', () => {
  it('exports exactly these runtime names (changing them is a deliberate API change)', () => {
    expect(Object.keys(api).sort()).toEqual([
      'ArchiveBufferFullError',
      'ArchiveNotConfiguredError',
      'ArchiveRecordRefusedError',
      'ArchiveUnavailableError',
      'BrokerUnavailableError',
      'COGMAN_DEFAULTS',
      'ClientClosedError',
      'CogmanClient',
      'CogmanError',
      'CogmanHealthIndicator',
      'CogmanMetrics',
      'CogmanModule',
      'CogmanWorker',
      'DEAD_LETTER_HEADERS',
      'DEFAULT_BACKOFF',
      'DependencyMissingError',
      'OfflineBufferFullError',
      'OptionsInvalidError',
      'StoreUnavailableError',
      'TASK_HEADERS',
      'TASK_LIST_MAX_LIMIT',
      'TASK_STATUSES',
      'TaskCancelledError',
      'TaskHandler',
      'TaskHandlerDuplicateError',
      'TaskHandlerInvalidError',
      'TaskInvalidError',
      'TaskNotFoundError',
      'TaskPublishError',
      'TaskQueryInvalidError',
      'TaskStatusConflictError',
      'TaskTimeoutError',
      'TaskUnrecoverableError',
      'TasksNotSentError',
      'WorkerShutdownError',
      'redactUri',
    ]);
  });
});
