import {
  Catch,
  HttpException,
  HttpStatus,
  Logger,
  type ArgumentsHost,
  type ExceptionFilter,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { STATUS_CODES } from 'node:http';
import { CogmanError } from '../errors';

/** The body of every error the REST API answers. */
export interface RestErrorBody {
  statusCode: number;
  error: string;
  code: string;
  message: string;
  details?: unknown;
}

/** HTTP status of each CogmanError code the API can meet; any other is a 500. */
export const STATUS_OF_ERROR_CODE: Readonly<Record<string, number>> = {
  COGMAN_TASK_NOT_FOUND: HttpStatus.NOT_FOUND,
  COGMAN_SCHEDULE_NOT_FOUND: HttpStatus.NOT_FOUND,
  COGMAN_TASK_STATUS_CONFLICT: HttpStatus.CONFLICT,
  COGMAN_TASK_INVALID: HttpStatus.BAD_REQUEST,
  COGMAN_TASK_QUERY_INVALID: HttpStatus.BAD_REQUEST,
  COGMAN_ARCHIVE_NOT_CONFIGURED: HttpStatus.NOT_IMPLEMENTED,
  COGMAN_ARCHIVE_UNAVAILABLE: HttpStatus.SERVICE_UNAVAILABLE,
  COGMAN_ARCHIVE_BUFFER_FULL: HttpStatus.SERVICE_UNAVAILABLE,
  COGMAN_STORE_UNAVAILABLE: HttpStatus.SERVICE_UNAVAILABLE,
  COGMAN_BROKER_UNAVAILABLE: HttpStatus.SERVICE_UNAVAILABLE,
  COGMAN_TASK_NOT_PUBLISHED: HttpStatus.SERVICE_UNAVAILABLE,
  COGMAN_TASKS_NOT_SENT: HttpStatus.SERVICE_UNAVAILABLE,
  COGMAN_OFFLINE_BUFFER_FULL: HttpStatus.SERVICE_UNAVAILABLE,
  COGMAN_CLIENT_CLOSED: HttpStatus.SERVICE_UNAVAILABLE,
  COGMAN_CLIENT_NOT_STARTED: HttpStatus.SERVICE_UNAVAILABLE,
};

/**
 * Turns whatever an endpoint, its guard or its validation threw into an HTTP status and one JSON
 * shape. Cogman errors keep their code and message; an unexpected error is logged and answered
 * 500 without its text.
 */
export function restErrorOf(exception: unknown): RestErrorBody {
  if (exception instanceof HttpException) {
    const statusCode = exception.getStatus();
    const response = exception.getResponse();
    const fields = typeof response === 'object' && response !== null ? response : {};
    const { code, message, details } = fields as Record<string, unknown>;
    return {
      statusCode,
      error: STATUS_CODES[statusCode] ?? 'Error',
      code: typeof code === 'string' ? code : `HTTP_${statusCode}`,
      message:
        typeof message === 'string'
          ? message
          : Array.isArray(message)
            ? message.map(String).join('; ')
            : typeof response === 'string'
              ? response
              : exception.message,
      ...(details === undefined ? {} : { details }),
    };
  }
  if (exception instanceof CogmanError && exception.code in STATUS_OF_ERROR_CODE) {
    const statusCode = STATUS_OF_ERROR_CODE[exception.code];
    const field = (exception as { field?: unknown }).field;
    return {
      statusCode,
      error: STATUS_CODES[statusCode]!,
      code: exception.code,
      message: exception.message,
      ...(typeof field === 'string' ? { details: [{ field, problems: [exception.message] }] } : {}),
    };
  }
  return {
    statusCode: HttpStatus.INTERNAL_SERVER_ERROR,
    error: STATUS_CODES[500]!,
    code: 'HTTP_500',
    message: 'Internal server error',
  };
}

/** The exception filter of `CogmanController` (see `restErrorOf`). */
@Catch()
export class RestExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('Cogman:REST');

  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const body = restErrorOf(exception);
    if (body.statusCode >= 500 && body.code === 'HTTP_500') {
      this.logger.error(
        `Unexpected error: ${exception instanceof Error ? exception.message : String(exception)}`,
        exception instanceof Error ? exception.stack : undefined,
      );
    }
    const { httpAdapter } = this.adapterHost;
    const response: unknown = host.switchToHttp().getResponse();
    if (body.statusCode === 401) {
      httpAdapter.setHeader(response, 'WWW-Authenticate', 'Bearer realm="cogman"');
    }
    httpAdapter.reply(response, body, body.statusCode);
  }
}

/**
 * Answers the Cogman errors an application's own controllers let through (from `CogmanClient`)
 * as the REST API does: `TaskNotFoundError` 404, `TaskStatusConflictError` 409,
 * `TaskInvalidError` 400, an unreachable broker or Redis 503, with the same JSON body. Other
 * errors are left to the application's handling.
 *
 * ```ts
 * @UseFilters(CogmanErrorFilter)   // on a controller, or { provide: APP_FILTER, useClass: CogmanErrorFilter }
 * ```
 */
@Catch(CogmanError)
export class CogmanErrorFilter extends RestExceptionFilter {}
