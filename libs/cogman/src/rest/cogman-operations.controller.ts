import {
  Controller,
  Get,
  HttpCode,
  Param,
  Post,
  UseFilters,
  UseGuards,
  UsePipes,
} from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiOkResponse,
  ApiOperation,
  ApiResponse,
  ApiSecurity,
  ApiTags,
} from '@nestjs/swagger';
import { CogmanClient } from '../client/cogman.client';
import type { CogmanPauses } from '../worker/queue-pauses';
import { PausesDto, PriorityParams } from './dto/pause.dto';
import { RestErrorDto } from './dto/service.responses';
import { RestAccessGuard } from './rest-access.guard';
import { RestExceptionFilter } from './rest-exception.filter';
import { restValidationPipe } from './rest-validation.pipe';

const ERRORS = {
  badRequest: { status: 400, description: 'Invalid input', type: RestErrorDto },
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
  unavailable: { status: 503, description: 'Redis is unreachable', type: RestErrorDto },
} as const;

/**
 * The REST API's operations on the namespace as a whole: pausing and resuming the processing of
 * a priority (or of both). Mounted with `CogmanController`, behind the same access rules.
 */
@ApiTags('Cogman')
@ApiSecurity('cogman-api-key')
@ApiBearerAuth('cogman-bearer')
@ApiResponse(ERRORS.unauthorized)
@ApiResponse(ERRORS.forbidden)
@UseGuards(RestAccessGuard)
@UseFilters(RestExceptionFilter)
@UsePipes(restValidationPipe())
@Controller()
export class CogmanOperationsController {
  constructor(private readonly client: CogmanClient) {}

  @Get('queues/pauses')
  @ApiOperation({ summary: 'Whether each priority is paused, and since when' })
  @ApiOkResponse({ type: PausesDto })
  @ApiResponse(ERRORS.unavailable)
  async pauses(): Promise<PausesDto> {
    return pausesJson(await this.client.pauses());
  }

  @Post('queues/pause')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Pause both priorities (the whole namespace) in every worker',
    description:
      'Workers start no new task within about a second; running ones finish; the queues keep accepting tasks.',
  })
  @ApiOkResponse({ type: PausesDto })
  @ApiResponse(ERRORS.unavailable)
  async pauseAll(): Promise<PausesDto> {
    return pausesJson(await this.client.pause());
  }

  @Post('queues/resume')
  @HttpCode(200)
  @ApiOperation({ summary: 'Resume both priorities in every worker' })
  @ApiOkResponse({ type: PausesDto })
  @ApiResponse(ERRORS.unavailable)
  async resumeAll(): Promise<PausesDto> {
    return pausesJson(await this.client.resume());
  }

  @Post('queues/:priority/pause')
  @HttpCode(200)
  @ApiOperation({ summary: 'Pause one priority in every worker' })
  @ApiOkResponse({ type: PausesDto })
  @ApiResponse(ERRORS.badRequest)
  @ApiResponse(ERRORS.unavailable)
  async pause(@Param() { priority }: PriorityParams): Promise<PausesDto> {
    return pausesJson(await this.client.pause(priority));
  }

  @Post('queues/:priority/resume')
  @HttpCode(200)
  @ApiOperation({ summary: 'Resume one priority in every worker' })
  @ApiOkResponse({ type: PausesDto })
  @ApiResponse(ERRORS.badRequest)
  @ApiResponse(ERRORS.unavailable)
  async resume(@Param() { priority }: PriorityParams): Promise<PausesDto> {
    return pausesJson(await this.client.resume(priority));
  }
}

function pausesJson(pauses: CogmanPauses): PausesDto {
  const one = ({ paused, since }: CogmanPauses['high']) => ({
    paused,
    since: since?.toISOString() ?? null,
  });
  return { high: one(pauses.high), low: one(pauses.low) };
}
