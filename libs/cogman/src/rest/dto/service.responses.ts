import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

/** The body of every error answer. */
export class RestErrorDto {
  @ApiProperty({ example: 404 }) statusCode!: number;
  @ApiProperty({ example: 'Not Found' }) error!: string;
  @ApiProperty({
    example: 'COGMAN_TASK_NOT_FOUND',
    description:
      'Stable code: a CogmanError code, COGMAN_REQUEST_INVALID, COGMAN_REST_* or HTTP_<status>',
  })
  code!: string;
  @ApiProperty({ example: 'Task 0b6f2d1c-3c9e-4f6e-9a43-8c0f1d2e3a4b was not found' })
  message!: string;
  @ApiPropertyOptional({
    description: 'For invalid requests: each bad field and its problems',
    example: [{ field: 'limit', problems: ['limit must not be greater than 500'] }],
  })
  details?: unknown;
}

/** `GET /ping`. */
export class PingDto {
  @ApiProperty({ example: 'ok' }) status!: 'ok';
  @ApiProperty({ type: String, format: 'date-time' }) time!: string;
}

/** `GET /health` (503 with the same object under `details` when down). */
export class HealthDto {
  @ApiProperty({ enum: ['up', 'down'] }) status!: 'up' | 'down';
  @ApiProperty({ enum: ['up', 'down'] }) broker!: 'up' | 'down';
  @ApiProperty({ enum: ['up', 'down'] }) redis!: 'up' | 'down';
  @ApiPropertyOptional({ enum: ['up', 'down'], description: 'When mongoUri is set' })
  mongo?: 'up' | 'down';
  @ApiPropertyOptional({ enum: ['up', 'down'], description: 'In a worker process' })
  consumers?: 'up' | 'down';
  @ApiPropertyOptional({
    enum: ['high', 'low'],
    isArray: true,
    description: 'Priorities paused in the namespace (not counted as down)',
  })
  paused?: ('high' | 'low')[];
}

/** One queue of `GET /queues`. */
export class QueueStateDto {
  @ApiProperty() name!: string;
  @ApiProperty({ enum: ['high', 'low', 'dead-letter'] }) kind!: 'high' | 'low' | 'dead-letter';
  @ApiProperty({ type: Number, nullable: true, description: 'Messages waiting in the queue' })
  ready!: number | null;
  @ApiProperty({
    type: Number,
    nullable: true,
    description:
      'Messages delivered to Cogman workers and not yet acknowledged, as they last reported (null if Redis could not be read)',
  })
  unacked!: number | null;
  @ApiProperty({ type: Number, nullable: true }) consumers!: number | null;
  @ApiPropertyOptional({ description: 'Why the broker could not describe the queue' })
  error?: string;
}

/** One task name of `GET /queues` and the workers that run it. */
export class TaskWorkersDto {
  @ApiProperty() name!: string;
  @ApiProperty({ type: [String], description: 'Ids of the live workers with its handler' })
  workers!: string[];
}

/** `GET /queues`. */
export class QueuesDto {
  @ApiProperty({ type: [QueueStateDto] }) queues!: QueueStateDto[];
  @ApiProperty({ type: Number, nullable: true, description: 'Cogman workers reporting' })
  workers!: number | null;
  @ApiProperty({
    type: [TaskWorkersDto],
    nullable: true,
    description:
      'The task names the live workers have handlers for, and which workers (null if Redis could not be read)',
  })
  tasks!: TaskWorkersDto[] | null;
  @ApiProperty({ description: 'Workers report every this many ms' }) reportInterval!: number;
  @ApiProperty({
    enum: ['high', 'low'],
    isArray: true,
    nullable: true,
    description: 'Priorities paused in the namespace (null if Redis could not be read)',
  })
  paused!: ('high' | 'low')[] | null;
}
