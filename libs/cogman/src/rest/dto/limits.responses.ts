import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

/** A rate limit of `GET /limits`. */
export class RateLimitStateDto {
  @ApiProperty() max!: number;
  @ApiProperty({ description: 'Window (ms)' }) duration!: number;
  @ApiProperty({ description: 'Starts within the last duration ms' }) started!: number;
  @ApiProperty({ description: 'Attempts given a later turn (scheduled)' }) waiting!: number;
}

/** A group with tasks running, in `GET /limits`. */
export class GroupStateDto {
  @ApiProperty() group!: string;
  @ApiProperty() running!: number;
}

/** A group concurrency limit of `GET /limits`. */
export class GroupConcurrencyStateDto {
  @ApiProperty({ description: 'Tasks of one group that may run at once' }) slots!: number;
  @ApiProperty({ type: [GroupStateDto], description: 'The groups with tasks running now' })
  groups!: GroupStateDto[];
}

/** The limits of one task's handler. */
export class TaskLimitsDto {
  @ApiProperty() name!: string;
  @ApiPropertyOptional({ type: RateLimitStateDto }) rateLimit?: RateLimitStateDto;
  @ApiPropertyOptional({ type: GroupConcurrencyStateDto })
  groupConcurrency?: GroupConcurrencyStateDto;
}

/** `GET /limits`. */
export class LimitsDto {
  @ApiProperty({ type: [TaskLimitsDto] }) limits!: TaskLimitsDto[];
}
