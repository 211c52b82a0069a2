import { ApiPropertyOptional } from '@nestjs/swagger';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsIn,
  IsInt,
  IsISO8601,
  IsOptional,
  IsString,
  Length,
  Matches,
  Max,
  Min,
} from 'class-validator';
import { TASK_LIST_MAX_LIMIT } from '../../store/task-archive';
import { TASK_STATUSES, type TaskPriority, type TaskStatus } from '../../task';
import { CommaList, DEFAULT_LIST_LIMIT, IntegerText, TASK_ID_PATTERN } from './rest-input';

/** Filters, order and page of `GET /tasks`. */
export class ListTasksQuery {
  @ApiPropertyOptional({
    description: 'Statuses to match: repeat the parameter or separate them with commas',
    enum: TASK_STATUSES,
    isArray: true,
    example: ['failed'],
  })
  @IsOptional()
  @CommaList()
  @IsArray({ message: 'status must be one or more task statuses' })
  @ArrayMinSize(1)
  @ArrayMaxSize(TASK_STATUSES.length)
  @IsIn(TASK_STATUSES, { each: true, message: `status must be among: ${TASK_STATUSES.join(', ')}` })
  status?: TaskStatus[];

  @ApiPropertyOptional({ description: 'Task name', example: 'email' })
  @IsOptional()
  @IsString()
  @Length(1, 255)
  name?: string;

  @ApiPropertyOptional({ enum: ['high', 'low'] })
  @IsOptional()
  @IsIn(['high', 'low'])
  priority?: TaskPriority;

  @ApiPropertyOptional({ description: 'The primaryKey given at send time', example: 'user-42' })
  @IsOptional()
  @IsString()
  @Length(1, 1024)
  primaryKey?: string;

  @ApiPropertyOptional({ description: 'Every attempt of one task: the id of its first attempt' })
  @IsOptional()
  @Matches(TASK_ID_PATTERN, { message: 'originalTaskId must be a task id' })
  originalTaskId?: string;

  @ApiPropertyOptional({
    description: 'Text the error of a failed attempt contains (ignoring case)',
    example: 'timeout',
  })
  @IsOptional()
  @IsString()
  @Length(1, 1024)
  error?: string;

  @ApiPropertyOptional({
    description: 'Created at or after (ISO 8601)',
    example: '2026-01-01T00:00:00Z',
  })
  @IsOptional()
  @IsISO8601({ strict: true }, { message: 'from must be an ISO 8601 date' })
  from?: string;

  @ApiPropertyOptional({ description: 'Created at or before (ISO 8601)' })
  @IsOptional()
  @IsISO8601({ strict: true }, { message: 'to must be an ISO 8601 date' })
  to?: string;

  @ApiPropertyOptional({
    enum: ['desc', 'asc'],
    default: 'desc',
    description: 'By creation time (then id): newest first, or oldest first',
  })
  @IsOptional()
  @IsIn(['desc', 'asc'])
  order?: 'desc' | 'asc';

  @ApiPropertyOptional({
    description: `Page size, at most ${TASK_LIST_MAX_LIMIT}`,
    default: DEFAULT_LIST_LIMIT,
    minimum: 1,
    maximum: TASK_LIST_MAX_LIMIT,
  })
  @IsOptional()
  @IntegerText()
  @IsInt({ message: 'limit must be a whole number' })
  @Min(1)
  @Max(TASK_LIST_MAX_LIMIT)
  limit?: number;

  @ApiPropertyOptional({ description: 'The nextCursor of the previous page' })
  @IsOptional()
  @IsString()
  @Length(1, 1024)
  @Matches(/^[A-Za-z0-9_-]+$/, { message: 'cursor must be a cursor returned by a previous page' })
  cursor?: string;
}
