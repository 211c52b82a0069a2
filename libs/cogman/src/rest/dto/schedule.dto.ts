import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Allow, Matches } from 'class-validator';
import type { BackoffPolicy, TaskPriority } from '../../task';
import { Raw } from './rest-input';

/** Fields a schedule's body may have (checked again, with their values, by `upsertSchedule`). */
export const SCHEDULE_FIELDS: ReadonlySet<string> = new Set([
  'name',
  'cron',
  'timezone',
  'every',
  'missed',
  'payload',
  'priority',
  'retry',
  'backoff',
  'timeout',
  'headers',
]);

/** The `:id` of a schedule route. */
export class ScheduleIdParams {
  @ApiProperty({ description: 'The schedule id', example: 'daily-report' })
  @Matches(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, {
    message: 'id must be 1 to 100 letters, digits, ".", "_" or "-"',
  })
  id!: string;
}

/** Body of `PUT /schedules/:id`: a schedule (see `TaskScheduleDefinition`), its id in the path. */
export class ScheduleBody {
  @ApiProperty({ description: 'The task sent at each tick', example: 'report' })
  @Allow()
  @Raw()
  name!: string;
  @ApiPropertyOptional({ description: 'Cron expression, 5 or 6 fields', example: '0 6 * * 1-5' })
  @Allow()
  @Raw()
  cron?: string;
  @ApiPropertyOptional({
    description: 'IANA time zone of the cron expression',
    example: 'Europe/Berlin',
  })
  @Allow()
  @Raw()
  timezone?: string;
  @ApiPropertyOptional({ description: 'Fixed interval in ms (instead of cron), at least 1000' })
  @Allow()
  @Raw()
  every?: number;
  @ApiPropertyOptional({ enum: ['once', 'skip'], default: 'once', description: 'Missed ticks' })
  @Allow()
  @Raw()
  missed?: 'once' | 'skip';
  @ApiPropertyOptional({ description: 'Payload of each task (any JSON value)' })
  @Allow()
  @Raw()
  payload?: unknown;
  @ApiPropertyOptional({ enum: ['high', 'low'] })
  @Allow()
  @Raw()
  priority?: TaskPriority;
  @ApiPropertyOptional() @Allow() @Raw() retry?: number;
  @ApiPropertyOptional({ example: { type: 'fixed', delay: 1000 } })
  @Allow()
  @Raw()
  backoff?: BackoffPolicy;
  @ApiPropertyOptional() @Allow() @Raw() timeout?: number;
  @ApiPropertyOptional({ type: 'object', additionalProperties: { type: 'string' } })
  @Allow()
  @Raw()
  headers?: Record<string, string>;
}

/** The last task a schedule sent. */
export class ScheduleLastTaskDto {
  @ApiProperty() taskId!: string;
  @ApiProperty({ type: String, nullable: true, description: 'Its current status, if still logged' })
  status!: string | null;
}

/** One schedule, as `GET /schedules` lists it. */
export class ScheduleDto extends ScheduleBody {
  @ApiProperty() id!: string;
  @ApiProperty({ enum: ['code', 'api'] }) source!: 'code' | 'api';
  @ApiProperty() paused!: boolean;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) nextRunAt!: string | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) lastRunAt!: string | null;
  @ApiProperty({ type: ScheduleLastTaskDto, nullable: true }) lastTask!: ScheduleLastTaskDto | null;
}

/** `GET /schedules`. */
export class SchedulesDto {
  @ApiProperty({ type: [ScheduleDto] }) schedules!: ScheduleDto[];
}
