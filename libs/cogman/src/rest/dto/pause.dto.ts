import { ApiProperty } from '@nestjs/swagger';
import { IsIn } from 'class-validator';
import type { TaskPriority } from '../../task';
import type { CogmanPauses } from '../../worker/queue-pauses';

/** The `:priority` of a pause or resume route. */
export class PriorityParams {
  @ApiProperty({ enum: ['high', 'low'] })
  @IsIn(['high', 'low'], { message: 'priority must be "high" or "low"' })
  priority!: TaskPriority;
}

/** One priority in `GET /queues/pauses`. */
export class PauseStateDto {
  @ApiProperty() paused!: boolean;
  @ApiProperty({ type: String, format: 'date-time', nullable: true, description: 'Paused since' })
  since!: string | null;
}

/** `GET /queues/pauses`, and the answer of every pause and resume. */
export class PausesDto {
  @ApiProperty({ type: PauseStateDto }) high!: PauseStateDto;
  @ApiProperty({ type: PauseStateDto }) low!: PauseStateDto;
}

/** The paused state as JSON. */
export function pausesJson(pauses: CogmanPauses): PausesDto {
  const one = ({ paused, since }: CogmanPauses['high']) => ({
    paused,
    since: since?.toISOString() ?? null,
  });
  return { high: one(pauses.high), low: one(pauses.low) };
}
