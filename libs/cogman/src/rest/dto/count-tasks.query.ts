import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsInt, IsISO8601, IsOptional, IsString, Length, Max, Min } from 'class-validator';
import { DEFAULT_COUNT_BUCKETS, IntegerText, MAX_COUNT_BUCKETS } from './rest-input';

/** Range, buckets and filter of `GET /counts`. */
export class CountTasksQuery {
  @ApiPropertyOptional({
    description: 'Start of the range, inclusive (ISO 8601). Default: a day before `to`',
    example: '2026-01-01T00:00:00Z',
  })
  @IsOptional()
  @IsISO8601({ strict: true }, { message: 'from must be an ISO 8601 date' })
  from?: string;

  @ApiPropertyOptional({ description: 'End of the range, exclusive (ISO 8601). Default: now' })
  @IsOptional()
  @IsISO8601({ strict: true }, { message: 'to must be an ISO 8601 date' })
  to?: string;

  @ApiPropertyOptional({
    description: `Equal intervals the range is split into, at most ${MAX_COUNT_BUCKETS}`,
    default: DEFAULT_COUNT_BUCKETS,
    minimum: 1,
    maximum: MAX_COUNT_BUCKETS,
  })
  @IsOptional()
  @IntegerText()
  @IsInt({ message: 'buckets must be a whole number' })
  @Min(1)
  @Max(MAX_COUNT_BUCKETS)
  buckets?: number;

  @ApiPropertyOptional({ description: 'Count only the tasks of this name' })
  @IsOptional()
  @IsString()
  @Length(1, 255)
  name?: string;
}
