import {
  BadRequestException,
  Body,
  Delete,
  Get,
  HttpCode,
  Injectable,
  Param,
  Post,
  Put,
  UnsupportedMediaTypeException,
  UseGuards,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import {
  ApiBody,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiResponse,
} from '@nestjs/swagger';
import { CogmanClient } from '../client/cogman.client';
import type { CogmanSchedule } from '../client/task-schedules';
import { ScheduleNotFoundError } from '../errors';
import {
  SCHEDULE_FIELDS,
  ScheduleBody,
  ScheduleDto,
  ScheduleIdParams,
  SchedulesDto,
} from './dto/schedule.dto';
import { TaskRecordDto } from './dto/task.responses';
import { taskJson } from './cogman.controller';
import { PausesDto, pausesJson, PriorityParams } from './dto/pause.dto';
import { RestErrorDto } from './dto/service.responses';
import { CogmanRestController } from './rest-controller.decorator';

const ERRORS = {
  badRequest: { status: 400, description: 'Invalid input', type: RestErrorDto },
  notFound: { status: 404, description: 'No such schedule', type: RestErrorDto },
  unavailable: { status: 503, description: 'Redis is unreachable', type: RestErrorDto },
} as const;

/** A schedule's body: JSON, a plain object, only the declared fields (before validation). */
@Injectable()
export class ScheduleBodyGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const request = context
      .switchToHttp()
      .getRequest<{ headers: Record<string, unknown>; body?: unknown }>();
    const type = request.headers['content-type'];
    if (typeof type !== 'string' || !/^application\/json\s*(;|$)/i.test(type)) {
      throw new UnsupportedMediaTypeException({
        code: 'COGMAN_REQUEST_INVALID',
        message: 'Send the schedule as JSON (Content-Type: application/json)',
      });
    }
    const { body } = request;
    const unknown =
      typeof body !== 'object' || body === null || Array.isArray(body)
        ? 'body'
        : Reflect.ownKeys(body).find((key) => typeof key !== 'string' || !SCHEDULE_FIELDS.has(key));
    if (unknown !== undefined) {
      const problem =
        unknown === 'body'
          ? 'the body must be a JSON object'
          : `property ${String(unknown)} should not exist`;
      throw new BadRequestException({
        code: 'COGMAN_REQUEST_INVALID',
        message: `Invalid request: ${problem}`,
        details: [{ field: String(unknown), problems: [problem] }],
      });
    }
    return true;
  }
}

/**
 * The REST API's operations on the namespace as a whole: pausing and resuming the processing of
 * a priority (or of both), and the recurring schedules. Mounted with `CogmanController`, behind
 * the same access rules.
 */
@CogmanRestController()
export class CogmanControlsController {
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

  @Get('schedules')
  @ApiOperation({ summary: 'Recurring schedules, with their next run and last run’s task' })
  @ApiOkResponse({ type: SchedulesDto })
  @ApiResponse(ERRORS.unavailable)
  async schedules(): Promise<SchedulesDto> {
    return { schedules: (await this.client.listSchedules()).map(scheduleJson) };
  }

  @Get('schedules/:id')
  @ApiOperation({ summary: 'One recurring schedule' })
  @ApiOkResponse({ type: ScheduleDto })
  @ApiResponse(ERRORS.notFound)
  @ApiResponse(ERRORS.unavailable)
  async schedule(@Param() { id }: ScheduleIdParams): Promise<ScheduleDto> {
    const schedule = await this.client.getSchedule(id);
    if (!schedule) throw new ScheduleNotFoundError(id);
    return scheduleJson(schedule);
  }

  @Put('schedules/:id')
  @UseGuards(ScheduleBodyGuard)
  @ApiOperation({
    summary: 'Create or replace a recurring schedule',
    description: 'Like CogmanClient.upsertSchedule; a changed schedule starts from its next tick.',
  })
  @ApiBody({ type: ScheduleBody })
  @ApiOkResponse({ type: ScheduleDto })
  @ApiResponse(ERRORS.badRequest)
  @ApiResponse({ status: 415, description: 'The body is not JSON', type: RestErrorDto })
  @ApiResponse(ERRORS.unavailable)
  async upsertSchedule(
    @Param() { id }: ScheduleIdParams,
    @Body() body: ScheduleBody,
  ): Promise<ScheduleDto> {
    const definition = { ...body, id };
    return scheduleJson(await this.client.upsertSchedule(definition));
  }

  @Delete('schedules/:id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Remove a recurring schedule (the tasks it sent stay)' })
  @ApiNoContentResponse({ description: 'Removed' })
  @ApiResponse(ERRORS.notFound)
  @ApiResponse(ERRORS.unavailable)
  async removeSchedule(@Param() { id }: ScheduleIdParams): Promise<void> {
    await this.client.removeSchedule(id);
  }

  @Post('schedules/:id/pause')
  @HttpCode(200)
  @ApiOperation({ summary: 'Pause a recurring schedule' })
  @ApiOkResponse({ type: ScheduleDto })
  @ApiResponse(ERRORS.notFound)
  @ApiResponse(ERRORS.unavailable)
  async pauseSchedule(@Param() { id }: ScheduleIdParams): Promise<ScheduleDto> {
    return scheduleJson(await this.client.pauseSchedule(id));
  }

  @Post('schedules/:id/resume')
  @HttpCode(200)
  @ApiOperation({ summary: 'Resume a paused schedule from its next tick' })
  @ApiOkResponse({ type: ScheduleDto })
  @ApiResponse(ERRORS.notFound)
  @ApiResponse(ERRORS.unavailable)
  async resumeSchedule(@Param() { id }: ScheduleIdParams): Promise<ScheduleDto> {
    return scheduleJson(await this.client.resumeSchedule(id));
  }

  @Post('schedules/:id/trigger')
  @HttpCode(200)
  @ApiOperation({ summary: 'Send a schedule’s task now, beside its ticks' })
  @ApiOkResponse({ type: TaskRecordDto, description: 'The task sent' })
  @ApiResponse(ERRORS.notFound)
  @ApiResponse(ERRORS.unavailable)
  async triggerSchedule(@Param() { id }: ScheduleIdParams): Promise<TaskRecordDto> {
    return taskJson(await this.client.triggerSchedule(id));
  }
}

function scheduleJson(schedule: CogmanSchedule): ScheduleDto {
  return {
    ...schedule,
    nextRunAt: schedule.nextRunAt?.toISOString() ?? null,
    lastRunAt: schedule.lastRunAt?.toISOString() ?? null,
  };
}
