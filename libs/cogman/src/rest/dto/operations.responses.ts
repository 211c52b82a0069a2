import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { PausesDto } from './pause.dto';
import { QueueStateDto } from './service.responses';

/** One worker process of `GET /workers`, from the report it writes to Redis. */
export class WorkerDto {
  @ApiProperty() id!: string;
  @ApiProperty() host!: string;
  @ApiProperty() pid!: number;
  @ApiProperty({ type: String, format: 'date-time' }) reportedAt!: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) startedAt!: string | null;
  @ApiProperty({ type: Number, nullable: true, description: 'Handlers running' })
  activeTasks!: number | null;
  @ApiProperty({ type: Number, nullable: true }) highPriorityConcurrency!: number | null;
  @ApiProperty({ type: Number, nullable: true }) lowPriorityConcurrency!: number | null;
  @ApiProperty({
    description: 'Deliveries it holds (running or read ahead), per queue',
    additionalProperties: { type: 'number' },
    example: { cogman_high_priority_queue_1: 2 },
  })
  held!: Record<string, number>;
}

/** `GET /workers`. */
export class WorkersDto {
  @ApiProperty({ type: [WorkerDto] }) workers!: WorkerDto[];
  @ApiProperty({ description: 'Workers report every this many ms' }) reportInterval!: number;
}

/** Something the dashboard's overview warns of. */
export class OverviewWarningDto {
  @ApiProperty({ enum: ['error', 'warning', 'info'] }) level!: 'error' | 'warning' | 'info';
  @ApiProperty({ example: 'NO_HIGH_PRIORITY_CONSUMER' }) code!: string;
  @ApiProperty() message!: string;
}

/** Connections of the process that answers. */
export class OverviewServicesDto {
  @ApiProperty() broker!: boolean;
  @ApiProperty() redis!: boolean;
  @ApiProperty({ type: Boolean, nullable: true, description: 'Null without mongoUri' })
  mongo!: boolean | null;
}

/** `GET /overview` and each event of `GET /overview/stream`: one shared snapshot. */
export class OverviewDto {
  @ApiProperty({ type: String, format: 'date-time' }) at!: string;
  @ApiProperty({ type: [QueueStateDto], nullable: true }) queues!: QueueStateDto[] | null;
  @ApiPropertyOptional({ description: 'Why the queues could not be read' }) queuesError?: string;
  @ApiProperty({ type: [WorkerDto], nullable: true }) workers!: WorkerDto[] | null;
  @ApiProperty({
    type: PausesDto,
    nullable: true,
    description: 'Whether each priority is paused (null when Redis could not be read)',
  })
  pauses!: PausesDto | null;
  @ApiProperty({ type: Number, nullable: true }) deadLetters!: number | null;
  @ApiProperty({ description: 'Tasks this process holds while the broker is unreachable' })
  offlineTasks!: number;
  @ApiProperty() pendingRedisWrites!: number;
  @ApiProperty({ description: 'Whether the MongoDB archive is configured (listing, counts)' })
  archive!: boolean;
  @ApiProperty({ type: OverviewServicesDto }) services!: OverviewServicesDto;
  @ApiProperty({ type: [OverviewWarningDto] }) warnings!: OverviewWarningDto[];
  @ApiProperty({ description: 'Snapshots are computed every this many ms' }) interval!: number;
}

/** One message of `GET /dead-letters`. */
export class DeadLetterDto {
  @ApiProperty({ description: 'Identifies the message for redrive and discard' }) key!: string;
  @ApiProperty({ type: String, nullable: true }) taskId!: string | null;
  @ApiProperty({ type: String, nullable: true }) taskName!: string | null;
  @ApiProperty({ type: String, nullable: true, example: 'unknown_task' }) reason!: string | null;
  @ApiProperty({ type: String, nullable: true }) detail!: string | null;
  @ApiProperty({ type: String, nullable: true, description: 'Where it was dead-lettered from' })
  queue!: string | null;
  @ApiProperty({ type: String, nullable: true, format: 'date-time' })
  deadLetteredAt!: string | null;
  @ApiProperty({ type: String, nullable: true }) contentType!: string | null;
  @ApiProperty({ description: 'Bytes of the body' }) size!: number;
  @ApiProperty({ enum: ['json', 'base64'] }) payloadEncoding!: 'json' | 'base64';
  @ApiProperty({ description: 'The body: JSON, or base64 (at most 64 KiB shown)' })
  payload!: unknown;
  @ApiProperty({ type: Object, description: 'Its headers, without the dead-letter ones' })
  headers!: Record<string, unknown>;
}

/** `GET /dead-letters`. */
export class DeadLettersDto {
  @ApiProperty({ type: Number, nullable: true, description: 'Messages in the dead-letter queue' })
  total!: number | null;
  @ApiProperty({ type: [DeadLetterDto] }) items!: DeadLetterDto[];
  @ApiProperty() limit!: number;
}

/** What a redrive or a discard did. */
export class DeadLetterActionDto {
  @ApiProperty({ description: 'Messages taken out of the queue' }) handled!: number;
  @ApiProperty({ description: 'Redriven as a new attempt of their task' }) retried!: number;
  @ApiProperty({ description: 'Published again as they were to their original queue' })
  requeued!: number;
  @ApiProperty({ description: 'Selected but left in the queue (nowhere to go back to)' })
  kept!: number;
  @ApiProperty({ description: 'Messages looked at' }) seen!: number;
  @ApiProperty({ type: Number, nullable: true }) remaining!: number | null;
}

/** What `POST /tasks/bulk` did. */
export class BulkActionDto {
  @ApiProperty() matched!: number;
  @ApiProperty({ description: 'Retried or cancelled' }) done!: number;
  @ApiProperty({ description: 'Whose status did not allow it' }) conflicts!: number;
  @ApiProperty() failed!: number;
  @ApiProperty({ description: 'The first failures' })
  errors!: { taskId: string; message: string }[];
  @ApiProperty({ description: 'Stopped at max with more tasks matching' }) truncated!: boolean;
}
