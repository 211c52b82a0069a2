import {
  BadRequestException,
  Injectable,
  UnsupportedMediaTypeException,
  type CanActivate,
  type ExecutionContext,
  type Type,
} from '@nestjs/common';
import { BULK_ACTION_FIELDS, DEAD_LETTER_ACTION_FIELDS } from './dto/operations.inputs';
import { SEND_TASK_FIELDS } from './dto/send-task.body';

/**
 * Checks the body of `POST /tasks` before validation: JSON only (a form or text body is what a
 * page of another site can send without a CORS preflight), and a plain object with no key
 * besides the declared ones (validation would silently drop `__proto__` or `constructor`).
 */
@Injectable()
export class JsonBodyGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    return checkJsonBody(
      context,
      SEND_TASK_FIELDS,
      'Send the task as JSON (Content-Type: application/json)',
    );
  }
}

/** The same check for a body of other fields. */
function jsonBodyGuard(fields: ReadonlySet<string>): Type<CanActivate> {
  @Injectable()
  class JsonFieldsGuard implements CanActivate {
    canActivate(context: ExecutionContext): boolean {
      return checkJsonBody(
        context,
        fields,
        'Send the body as JSON (Content-Type: application/json)',
      );
    }
  }
  return JsonFieldsGuard;
}

/** The body check of `POST /dead-letters/redrive` and `/discard`. */
export const DeadLetterBodyGuard = jsonBodyGuard(DEAD_LETTER_ACTION_FIELDS);
/** The body check of `POST /tasks/bulk`. */
export const BulkBodyGuard = jsonBodyGuard(BULK_ACTION_FIELDS);

function checkJsonBody(
  context: ExecutionContext,
  fields: ReadonlySet<string>,
  hint: string,
): boolean {
  const request = context
    .switchToHttp()
    .getRequest<{ headers: Record<string, unknown>; body?: unknown }>();
  const type = request.headers['content-type'];
  if (typeof type !== 'string' || !/^application\/json\s*(;|$)/i.test(type)) {
    throw new UnsupportedMediaTypeException({
      code: 'COGMAN_REQUEST_INVALID',
      message: hint,
    });
  }
  const { body } = request;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw bad('body', 'the body must be a JSON object');
  }
  const unknown = Reflect.ownKeys(body).find((key) => typeof key !== 'string' || !fields.has(key));
  if (unknown !== undefined) {
    throw bad(String(unknown), `property ${String(unknown)} should not exist`);
  }
  return true;
}

function bad(field: string, problem: string): BadRequestException {
  return new BadRequestException({
    code: 'COGMAN_REQUEST_INVALID',
    message: `Invalid request: ${problem}`,
    details: [{ field, problems: [problem] }],
  });
}
