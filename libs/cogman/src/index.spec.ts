import * as api from './index';

describe('public API', () => {
  it('exports exactly these runtime names (changing them is a deliberate API change)', () => {
    expect(Object.keys(api).sort()).toEqual([
      'ArchiveBufferFullError',
      'ArchiveRecordRefusedError',
      'ArchiveUnavailableError',
      'BrokerUnavailableError',
      'COGMAN_DEFAULTS',
      'ClientClosedError',
      'CogmanClient',
      'CogmanError',
      'CogmanModule',
      'CogmanWorker',
      'DEAD_LETTER_HEADERS',
      'OptionsInvalidError',
      'TASK_HEADERS',
      'TASK_STATUSES',
      'TaskHandler',
      'TaskHandlerDuplicateError',
      'TaskHandlerInvalidError',
      'TaskInvalidError',
      'TaskPublishError',
      'TaskQueryInvalidError',
      'TasksNotSentError',
      'redactUri',
    ]);
  });
});
