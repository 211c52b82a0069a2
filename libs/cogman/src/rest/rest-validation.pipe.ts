import { BadRequestException, ValidationPipe, type ValidationError } from '@nestjs/common';

/** One bad field of a request and what is wrong with it. */
export interface FieldProblem {
  field: string;
  problems: string[];
}

function problemsOf(errors: ValidationError[], parent = ''): FieldProblem[] {
  return errors.flatMap((error) => {
    const field = parent ? `${parent}.${error.property}` : error.property;
    const own = error.constraints ? [{ field, problems: Object.values(error.constraints) }] : [];
    return [...own, ...problemsOf(error.children ?? [], field)];
  });
}

/**
 * Validation of the REST API's inputs: only declared fields (an unknown one is a 400, not
 * ignored), each of its declared type, so that no query value can turn into an object or an
 * operator. Errors list each bad field.
 */
export function restValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    forbidUnknownValues: true,
    transform: true,
    transformOptions: { enableImplicitConversion: false },
    validationError: { target: false, value: false },
    exceptionFactory: (errors) => {
      const details = problemsOf(errors);
      const fields =
        details.length > 0 ? details : [{ field: 'request', problems: ['is not valid'] }];
      return new BadRequestException({
        code: 'COGMAN_REQUEST_INVALID',
        message: `Invalid request: ${fields.map((f) => f.problems.join(', ')).join('; ')}`,
        details: fields,
      });
    },
  });
}
