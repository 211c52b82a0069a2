import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsISO8601,
  IsObject,
  IsOptional,
  IsString,
  Length,
  Matches,
  Max,
  Min,
  ValidateNested,
} from 'class-validator';
import { DEAD_LETTER_BATCH_MAX } from '../../broker/dead-letter.queue';
import { BULK_ACTION_MAX } from '../../client/bulk-actions.service';
import { TASK_STATUSES, type TaskPriority, type TaskStatus } from '../../task';
import { IntegerText, TASK_ID_PATTERN } from './rest-input';

/** Dead letters a listing shows when `limit` is not given. */
export const DEFAULT_DEAD_LETTER_LIMIT = 50;
/** Tasks a bulk action by filter goes through when `max` is not given. */
export const DEFAULT_BULK_MAX = 1000;
/** Most task ids one bulk action takes. */
export const BULK_IDS_MAX = 1000;
const DEAD_LETTER_KEY = /^[A-Za-z0-9_-]{22}$/;

/** `GET /dead-letters`. */
export class DeadLettersQuery {
  @ApiPropertyOptional({
    description: `Messages from the head of the queue, at most ${DEAD_LETTER_BATCH_MAX}`,
    default: DEFAULT_DEAD_LETTER_LIMIT,
    minimum: 1,
    maximum: DEAD_LETTER_BATCH_MAX,
  })
  @IsOptional()
  @IntegerText()
  @IsInt({ message: 'limit must be a whole number' })
  @Min(1)
  @Max(DEAD_LETTER_BATCH_MAX)
  limit?: number;
}

/** Fields of `POST /dead-letters/redrive` and `/discard`. */
export const DEAD_LETTER_ACTION_FIELDS: ReadonlySet<string> = new Set(['keys', 'all', 'limit']);

/** Body of `POST /dead-letters/redrive` and `/discard`: some messages (by key) or all. */
export class DeadLetterActionBody {
  @ApiPropertyOptional({
    description: 'Keys of the messages (the `key` of each in `GET /dead-letters`)',
    type: [String],
  })
  @IsOptional()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(DEAD_LETTER_BATCH_MAX)
  @Matches(DEAD_LETTER_KEY, { each: true, message: 'keys must be keys of dead letters' })
  keys?: string[];

  @ApiPropertyOptional({ description: 'Every message (within `limit`), instead of `keys`' })
  @IsOptional()
  @IsBoolean()
  all?: boolean;

  @ApiPropertyOptional({
    description: `Messages looked at from the head of the queue, at most ${DEAD_LETTER_BATCH_MAX}: call again for more`,
    default: DEAD_LETTER_BATCH_MAX,
    minimum: 1,
    maximum: DEAD_LETTER_BATCH_MAX,
  })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(DEAD_LETTER_BATCH_MAX)
  limit?: number;
}

/** The filter of a bulk action: those of `GET /tasks`. */
export class BulkFilter {
  @ApiPropertyOptional({ enum: TASK_STATUSES, isArray: true, example: ['failed'] })
  @IsOptional()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(TASK_STATUSES.length)
  @IsIn(TASK_STATUSES, { each: true, message: `status must be among: ${TASK_STATUSES.join(', ')}` })
  status?: TaskStatus[];

  @ApiPropertyOptional() @IsOptional() @IsString() @Length(1, 255) name?: string;

  @ApiPropertyOptional({ enum: ['high', 'low'] })
  @IsOptional()
  @IsIn(['high', 'low'])
  priority?: TaskPriority;

  @ApiPropertyOptional() @IsOptional() @IsString() @Length(1, 1024) primaryKey?: string;

  @ApiPropertyOptional({ description: 'Text the error of a failed attempt contains' })
  @IsOptional()
  @IsString()
  @Length(1, 1024)
  error?: string;

  @ApiPropertyOptional({ description: 'Created at or after (ISO 8601)' })
  @IsOptional()
  @IsISO8601({ strict: true }, { message: 'from must be an ISO 8601 date' })
  from?: string;

  @ApiPropertyOptional({ description: 'Created at or before (ISO 8601)' })
  @IsOptional()
  @IsISO8601({ strict: true }, { message: 'to must be an ISO 8601 date' })
  to?: string;
}

/** Fields of `POST /tasks/bulk`. */
export const BULK_ACTION_FIELDS: ReadonlySet<string> = new Set([
  'action',
  'taskIds',
  'filter',
  'max',
]);

/** Body of `POST /tasks/bulk`: an action on tasks given by id, or on every task a filter matches. */
export class BulkActionBody {
  @ApiProperty({ enum: ['retry', 'cancel'] })
  @IsIn(['retry', 'cancel'])
  action!: 'retry' | 'cancel';

  @ApiPropertyOptional({ type: [String], description: `At most ${BULK_IDS_MAX} task ids` })
  @IsOptional()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(BULK_IDS_MAX)
  @Matches(TASK_ID_PATTERN, { each: true, message: 'taskIds must be task ids' })
  taskIds?: string[];

  @ApiPropertyOptional({
    type: BulkFilter,
    description: 'Every task matching it (needs the MongoDB archive), instead of taskIds',
  })
  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => BulkFilter)
  filter?: BulkFilter;

  @ApiPropertyOptional({
    description: `With a filter: most tasks it goes through, at most ${BULK_ACTION_MAX}`,
    default: DEFAULT_BULK_MAX,
    minimum: 1,
    maximum: BULK_ACTION_MAX,
  })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(BULK_ACTION_MAX)
  max?: number;
}
