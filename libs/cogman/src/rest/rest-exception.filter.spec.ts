import { BadRequestException, ForbiddenException, HttpException } from '@nestjs/common';
import {
  ArchiveNotConfiguredError,
  ClientClosedError,
  CogmanError,
  OfflineBufferFullError,
  StoreUnavailableError,
  TaskInvalidError,
  TaskNotFoundError,
  TaskPublishError,
  TaskStatusConflictError,
} from '../errors';
import { restErrorOf } from './rest-exception.filter';

/** Errors of the MongoDB archive, by their stable codes. */
class CodedError extends CogmanError {
  constructor(readonly code: string) {
    super(`an error coded ${code}`);
  }
}

describe('restErrorOf', () => {
  it.each<[string, unknown, number, string]>([
    ['a task not found', new TaskNotFoundError('t1'), 404, 'COGMAN_TASK_NOT_FOUND'],
    [
      'a status conflict',
      new TaskStatusConflictError('t1', 'success', 'cancel', 'it has already finished'),
      409,
      'COGMAN_TASK_STATUS_CONFLICT',
    ],
    ['an invalid task', new TaskInvalidError('priority', 'is bad'), 400, 'COGMAN_TASK_INVALID'],
    [
      'an invalid archive query',
      new CodedError('COGMAN_TASK_QUERY_INVALID'),
      400,
      'COGMAN_TASK_QUERY_INVALID',
    ],
    [
      'no archive',
      new ArchiveNotConfiguredError('list tasks'),
      501,
      'COGMAN_ARCHIVE_NOT_CONFIGURED',
    ],
    [
      'an unreachable archive',
      new CodedError('COGMAN_ARCHIVE_UNAVAILABLE'),
      503,
      'COGMAN_ARCHIVE_UNAVAILABLE',
    ],
    [
      'an unreachable Redis',
      new StoreUnavailableError('reading a task', 5000),
      503,
      'COGMAN_STORE_UNAVAILABLE',
    ],
    [
      'an unconfirmed publish',
      new TaskPublishError('t1', 'timeout'),
      503,
      'COGMAN_TASK_NOT_PUBLISHED',
    ],
    [
      'a full offline buffer',
      new OfflineBufferFullError('t1', 10),
      503,
      'COGMAN_OFFLINE_BUFFER_FULL',
    ],
    ['a closed client', new ClientClosedError(), 503, 'COGMAN_CLIENT_CLOSED'],
  ])('answers %s with %i and its code and message', (_case, error, status, code) => {
    const body = restErrorOf(error);
    expect(body).toMatchObject({ statusCode: status, code, message: (error as Error).message });
    expect(typeof body.error).toBe('string');
  });

  it('names the bad field of an invalid task', () => {
    expect(restErrorOf(new TaskInvalidError('headers', 'must be strings')).details).toEqual([
      { field: 'headers', problems: ['Invalid task: "headers" must be strings'] },
    ]);
  });

  it('keeps the status, code and details of an HTTP exception', () => {
    const invalid = new BadRequestException({
      code: 'COGMAN_REQUEST_INVALID',
      message: 'Invalid request: limit',
      details: [{ field: 'limit', problems: ['too big'] }],
    });
    expect(restErrorOf(invalid)).toEqual({
      statusCode: 400,
      error: 'Bad Request',
      code: 'COGMAN_REQUEST_INVALID',
      message: 'Invalid request: limit',
      details: [{ field: 'limit', problems: ['too big'] }],
    });
    expect(restErrorOf(new ForbiddenException())).toEqual({
      statusCode: 403,
      error: 'Forbidden',
      code: 'HTTP_403',
      message: 'Forbidden',
    });
    expect(restErrorOf(new HttpException('I am a teapot', 418))).toMatchObject({
      statusCode: 418,
      message: 'I am a teapot',
    });
  });

  it('answers an unexpected error with 500 and never its text', () => {
    for (const error of [
      new Error('secret internals'),
      new CodedError('COGMAN_SOMETHING_NEW'),
      'x',
    ]) {
      expect(restErrorOf(error)).toEqual({
        statusCode: 500,
        error: 'Internal Server Error',
        code: 'HTTP_500',
        message: 'Internal server error',
      });
    }
  });
});
