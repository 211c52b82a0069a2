import { applyDecorators, Controller, UseFilters, UseGuards, UsePipes } from '@nestjs/common';
import { ApiBearerAuth, ApiResponse, ApiSecurity, ApiTags } from '@nestjs/swagger';
import { RestErrorDto } from './dto/service.responses';
import { RestAccessGuard } from './rest-access.guard';
import { RestExceptionFilter } from './rest-exception.filter';
import { restValidationPipe } from './rest-validation.pipe';

/** The answers of the access rules, which every endpoint of the REST API may give. */
export const REST_ACCESS_ERRORS = {
  unauthorized: {
    status: 401,
    description: 'No key, or a wrong one (restApiKey)',
    type: RestErrorDto,
  },
  forbidden: {
    status: 403,
    description: 'Refused by a guard, or not a local client',
    type: RestErrorDto,
  },
} as const;

/**
 * A controller of Cogman's REST API: its OpenAPI tag and security schemes, the access rules
 * (loopback only by default, `restApiKey`, `rest.guards`), Cogman's exception filter and input
 * validation. Every controller mounted under `rest.prefix` uses it, so they cannot drift apart.
 */
export function CogmanRestController(): ClassDecorator {
  return applyDecorators(
    ApiTags('Cogman'),
    ApiSecurity('cogman-api-key'),
    ApiBearerAuth('cogman-bearer'),
    ApiResponse(REST_ACCESS_ERRORS.unauthorized),
    ApiResponse(REST_ACCESS_ERRORS.forbidden),
    UseGuards(RestAccessGuard),
    UseFilters(RestExceptionFilter),
    UsePipes(restValidationPipe()),
    Controller(),
  );
}
