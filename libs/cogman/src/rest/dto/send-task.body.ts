import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  Allow,
  IsIn,
  IsInt,
  IsISO8601,
  IsObject,
  IsOptional,
  IsString,
  Length,
  Max,
  Min,
} from 'class-validator';
import type { BackoffPolicy, TaskPriority, UniqueTaskOptions } from '../../task';
import { Raw } from './rest-input';

/** Fields `POST /tasks` accepts. */
export const SEND_TASK_FIELDS: ReadonlySet<string> = new Set([
  'name',
  'payload',
  'priority',
  'retry',
  'timeout',
  'backoff',
  'delay',
  'runAt',
  'primaryKey',
  'headers',
  'unique',
  'group',
]);

/** Body of `POST /tasks`: what `CogmanClient.sendTask` takes, as JSON. */
export class SendTaskBody {
  @ApiProperty({
    description: 'Name of the task; a worker must have a handler for it',
    example: 'email',
  })
  @IsString()
  @Length(1, 255)
  name!: string;

  @ApiPropertyOptional({
    description: 'Any JSON value, given to the handler as it is',
    example: { to: 'a@b.c' },
  })
  @Allow()
  @Raw()
  payload?: unknown;

  @ApiPropertyOptional({ enum: ['high', 'low'], default: 'low' })
  @IsOptional()
  @IsIn(['high', 'low'])
  priority?: TaskPriority;

  @ApiPropertyOptional({ description: 'Extra attempts after a failure (default: the handler’s)' })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(1_000_000)
  retry?: number;

  @ApiPropertyOptional({ description: 'Milliseconds an attempt may run' })
  @IsOptional()
  @IsInt()
  @Min(1)
  timeout?: number;

  @ApiPropertyOptional({
    description: 'Wait between attempts',
    example: { type: 'exponential', delay: 1000 },
  })
  @IsOptional()
  @IsObject()
  @Raw()
  backoff?: BackoffPolicy;

  @ApiPropertyOptional({ description: 'Run no earlier than this many milliseconds from now' })
  @IsOptional()
  @IsInt()
  @Min(0)
  delay?: number;

  @ApiPropertyOptional({ description: 'Run no earlier than this time (ISO 8601)' })
  @IsOptional()
  @IsISO8601({ strict: true }, { message: 'runAt must be an ISO 8601 date' })
  runAt?: string;

  @ApiPropertyOptional({ description: 'A key of your own to find the task by', example: 'user-42' })
  @IsOptional()
  @IsString()
  @Length(1, 1024)
  primaryKey?: string;

  @ApiPropertyOptional({
    description: 'String headers for the handler (ctx.task.headers)',
    type: 'object',
    additionalProperties: { type: 'string' },
  })
  @IsOptional()
  @IsObject()
  @Raw()
  headers?: Record<string, string>;

  @ApiPropertyOptional({
    description:
      'Send it only if no unfinished task has the same key (default key: name and primaryKey, or name and a hash of the payload); with ttl, the key is held that many ms. true for the defaults',
    example: { key: 'sync:account-7', ttl: 60000 },
  })
  @IsOptional()
  @Allow()
  @Raw()
  unique?: UniqueTaskOptions | boolean;

  @ApiPropertyOptional({
    description:
      'Group of the task: a handler with groupConcurrency runs that many of a group at once',
    example: 'tenant-42',
  })
  @IsOptional()
  @IsString()
  @Length(1, 255)
  group?: string;
}
