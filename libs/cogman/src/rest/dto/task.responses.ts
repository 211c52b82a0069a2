import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { TASK_STATUSES, type TaskPriority, type TaskStatus } from '../../task';

/** One attempt of a task, as the REST API shows it (dates in ISO 8601). */
export class TaskRecordDto {
  @ApiProperty() taskId!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ description: 'Id of the first attempt; shared by every attempt' })
  originalTaskId!: string;
  @ApiProperty({ type: String, nullable: true }) primaryKey!: string | null;
  @ApiProperty({ description: 'Retries allowed after a failure' }) retry!: number;
  @ApiProperty({ description: '1 for the first run, 2 for the first retry, ...' })
  attempt!: number;
  @ApiProperty({ enum: ['high', 'low'] }) priority!: TaskPriority;
  @ApiProperty({ type: 'object', additionalProperties: { type: 'string' } })
  headers!: Record<string, string>;
  @ApiProperty({ enum: ['json', 'base64'], description: 'base64: the payload was a Buffer' })
  payloadEncoding!: 'json' | 'base64';
  @ApiProperty({ description: 'The payload as sent (a base64 string for a Buffer)' })
  payload!: unknown;
  @ApiProperty({ enum: TASK_STATUSES }) status!: TaskStatus;
  @ApiProperty({ type: String, nullable: true }) failError!: string | null;
  @ApiProperty({ type: Number, nullable: true, description: 'Milliseconds the handler ran' })
  duration!: number | null;
  @ApiProperty({
    type: String,
    format: 'date-time',
    nullable: true,
    description:
      'When a worker started the handler: known with the outcome, or once the attempt has run progressAfter ms',
  })
  startedAt!: string | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) runAt!: string | null;
  @ApiProperty({ type: String, format: 'date-time' }) createdAt!: string;
  @ApiProperty({ type: String, format: 'date-time' }) updatedAt!: string;
  @ApiPropertyOptional({
    description:
      'POST /tasks of a unique task: true when an unfinished task had its key (this is that task; none was created)',
  })
  deduplicated?: boolean;
  @ApiProperty({
    required: false,
    description: 'What the handler returned, with success (a base64 string for a Buffer)',
  })
  result?: unknown;
  @ApiProperty({ required: false, enum: ['json', 'base64'], description: 'base64: a Buffer' })
  resultEncoding?: 'json' | 'base64';
  @ApiProperty({ required: false, description: 'Why the return value was not recorded' })
  resultError?: string;
  @ApiProperty({
    required: false,
    description: 'The last progress the handler reported: a number 0-100 or a JSON object',
  })
  progress?: unknown;
}

/** `GET /tasks/:id`: the attempt asked for and every attempt of its task. */
export class TaskDetailDto {
  @ApiProperty({ type: TaskRecordDto }) task!: TaskRecordDto;
  @ApiProperty({ type: [TaskRecordDto], description: 'First attempt to last' })
  attempts!: TaskRecordDto[];
}

/** `GET /tasks`: one page. */
export class TaskListDto {
  @ApiProperty({ type: [TaskRecordDto] }) items!: TaskRecordDto[];
  @ApiProperty({ description: 'Tasks matching the filters, over all pages' }) total!: number;
  @ApiProperty({ type: String, nullable: true, description: 'Pass as `cursor` for the next page' })
  nextCursor!: string | null;
  @ApiProperty() limit!: number;
}

/** Counts per status of one interval. */
export class TaskCountBucketDto {
  @ApiProperty({ type: String, format: 'date-time' }) from!: string;
  @ApiProperty({ type: String, format: 'date-time' }) to!: string;
  @ApiProperty() total!: number;
  @ApiProperty({
    type: 'object',
    properties: Object.fromEntries(TASK_STATUSES.map((status) => [status, { type: 'number' }])),
  })
  counts!: Record<TaskStatus, number>;
}

/** `GET /counts`. */
export class TaskCountsDto {
  @ApiProperty({ type: String, format: 'date-time' }) from!: string;
  @ApiProperty({ type: String, format: 'date-time' }) to!: string;
  @ApiProperty({ type: [TaskCountBucketDto] }) buckets!: TaskCountBucketDto[];
}
