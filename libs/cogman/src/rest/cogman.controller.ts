import {
  BadRequestException,
  Body,
  Get,
  Header,
  HttpCode,
  Inject,
  NotFoundException,
  Optional,
  Param,
  Post,
  Query,
  ServiceUnavailableException,
  UseGuards,
} from '@nestjs/common';
import {
  ApiBody,
  ApiExtraModels,
  ApiOkResponse,
  ApiOperation,
  ApiProduces,
  ApiResponse,
} from '@nestjs/swagger';
import { CogmanClient } from '../client/cogman.client';
import { CogmanHealthIndicator } from '../inspector/cogman-health.indicator';
import { TaskNotFoundError } from '../errors';
import { CogmanMetrics, PROMETHEUS_CONTENT_TYPE } from '../metrics/cogman.metrics';
import type { TaskRecord } from '../task';
import { CountTasksQuery } from './dto/count-tasks.query';
import { ListTasksQuery } from './dto/list-tasks.query';
import { DEFAULT_COUNT_BUCKETS, DEFAULT_COUNT_RANGE, DEFAULT_LIST_LIMIT } from './dto/rest-input';
import { SendTaskBody } from './dto/send-task.body';
import { JsonBodyGuard } from './json-body.guard';
import { HealthDto, PingDto, QueuesDto, RestErrorDto } from './dto/service.responses';
import { LimitsDto } from './dto/limits.responses';
import { TaskIdParams } from './dto/task-id.params';
import { TaskCountsDto, TaskDetailDto, TaskListDto, TaskRecordDto } from './dto/task.responses';
import { CogmanRestController } from './rest-controller.decorator';

const ERRORS = {
  badRequest: { status: 400, description: 'Invalid input', type: RestErrorDto },
  notFound: { status: 404, description: 'No such task', type: RestErrorDto },
  conflict: { status: 409, description: 'The task’s status does not allow it', type: RestErrorDto },
  notImplemented: {
    status: 501,
    description: 'Needs the MongoDB archive (mongoUri)',
    type: RestErrorDto,
  },
  unavailable: {
    status: 503,
    description: 'RabbitMQ, Redis or MongoDB is unreachable',
    type: RestErrorDto,
  },
} as const;

/**
 * The REST API of Cogman: tasks (get, list, send, retry, cancel, run now), counts over time,
 * queues, health and metrics. Mounted under `rest.prefix` (default `cogman`) when
 * `startRestServer` is set.
 */
@CogmanRestController()
@ApiExtraModels(RestErrorDto)
export class CogmanController {
  constructor(
    private readonly client: CogmanClient,
    private readonly healthIndicator: CogmanHealthIndicator,
    @Optional() @Inject(CogmanMetrics) private readonly cogmanMetrics: CogmanMetrics | null,
  ) {}

  @Get('ping')
  @ApiOperation({ summary: 'Is the API there' })
  @ApiOkResponse({ type: PingDto })
  ping(): PingDto {
    return { status: 'ok', time: new Date().toISOString() };
  }

  @Get('health')
  @ApiOperation({ summary: 'Whether RabbitMQ, Redis, MongoDB (if set) and the consumers are up' })
  @ApiOkResponse({ type: HealthDto })
  @ApiResponse({
    status: 503,
    description: 'Something is down; `details` says what',
    type: RestErrorDto,
  })
  async health(): Promise<HealthDto> {
    const { cogman } = await this.healthIndicator.isHealthy('cogman');
    if (cogman.status === 'down') {
      throw new ServiceUnavailableException({
        code: 'COGMAN_UNHEALTHY',
        message: cogman.message ?? 'down',
        details: cogman,
      });
    }
    return cogman;
  }

  @Get('tasks')
  @ApiOperation({
    summary: 'List tasks (every attempt is one), filtered, sorted, a page at a time',
    description:
      'Needs the MongoDB archive (mongoUri); without it, 501. Sorted by creation time then id; `total` counts every match; pass `nextCursor` as `cursor` for the next page.',
  })
  @ApiOkResponse({ type: TaskListDto })
  @ApiResponse(ERRORS.badRequest)
  @ApiResponse(ERRORS.notImplemented)
  @ApiResponse(ERRORS.unavailable)
  async list(@Query() query: ListTasksQuery): Promise<TaskListDto> {
    const from = date('from', query.from);
    const to = date('to', query.to);
    if (from && to && from.getTime() > to.getTime()) {
      throw invalid('from', 'from must not be after to');
    }
    const limit = query.limit ?? DEFAULT_LIST_LIMIT;
    const page = await this.client.listTasks({
      status: query.status,
      name: query.name,
      priority: query.priority,
      primaryKey: query.primaryKey,
      originalTaskId: query.originalTaskId,
      error: query.error,
      from,
      to,
      order: query.order,
      limit,
      cursor: query.cursor,
    });
    return {
      items: page.items.map(taskJson),
      total: page.total,
      nextCursor: page.nextCursor,
      limit,
    };
  }

  @Get('tasks/:id')
  @ApiOperation({
    summary: 'One task attempt, and every attempt of its task',
    description: 'From Redis, or from the MongoDB archive once it has expired from Redis.',
  })
  @ApiOkResponse({ type: TaskDetailDto })
  @ApiResponse(ERRORS.badRequest)
  @ApiResponse(ERRORS.notFound)
  @ApiResponse(ERRORS.unavailable)
  async get(@Param() { id }: TaskIdParams): Promise<TaskDetailDto> {
    const [task, attempts] = await Promise.all([
      this.client.getTask(id),
      this.client.getAttempts(id),
    ]);
    if (!task) throw new TaskNotFoundError(id);
    return { task: taskJson(task), attempts: attempts.map(taskJson) };
  }

  @Post('tasks')
  @UseGuards(JsonBodyGuard)
  @ApiOperation({
    summary: 'Send a task',
    description:
      'Like CogmanClient.sendTask. 201 with the record: `queued` once the broker confirmed it, `scheduled` with a delay, `initiated` while the broker is unreachable (it is published when it returns).',
  })
  @ApiBody({ type: SendTaskBody })
  @ApiResponse({ status: 201, type: TaskRecordDto, description: 'Accepted' })
  @ApiResponse(ERRORS.badRequest)
  @ApiResponse({ status: 415, description: 'The body is not JSON', type: RestErrorDto })
  @ApiResponse(ERRORS.unavailable)
  async send(@Body() body: SendTaskBody): Promise<TaskRecordDto> {
    const { runAt, ...task } = body;
    const record = await this.client.sendTask({
      ...task,
      ...(runAt === undefined ? {} : { runAt: date('runAt', runAt) }),
    });
    const json = taskJson(record);
    return record.deduplicated === undefined
      ? json
      : { ...json, deduplicated: record.deduplicated };
  }

  @Post('tasks/:id/retry')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Retry a failed task now',
    description:
      'Publishes a new attempt (the next attempt number, one more retry allowed). 409 unless the task’s current attempt is failed.',
  })
  @ApiOkResponse({ type: TaskRecordDto, description: 'The new attempt' })
  @ApiResponse(ERRORS.badRequest)
  @ApiResponse(ERRORS.notFound)
  @ApiResponse(ERRORS.conflict)
  @ApiResponse(ERRORS.unavailable)
  async retry(@Param() { id }: TaskIdParams): Promise<TaskRecordDto> {
    return taskJson(await this.client.retryTask(id));
  }

  @Post('tasks/:id/cancel')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Cancel a task that has not finished',
    description:
      'Scheduled or queued: it never runs; running: its handler’s signal aborts. 409 for a finished task.',
  })
  @ApiOkResponse({ type: TaskRecordDto, description: 'The cancelled attempt' })
  @ApiResponse(ERRORS.badRequest)
  @ApiResponse(ERRORS.notFound)
  @ApiResponse(ERRORS.conflict)
  @ApiResponse(ERRORS.unavailable)
  async cancel(@Param() { id }: TaskIdParams): Promise<TaskRecordDto> {
    return taskJson(await this.client.cancelTask(id));
  }

  @Post('tasks/:id/run-now')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Publish a scheduled task (or a retry waiting for its backoff) now',
    description: '409 for a task that is not scheduled.',
  })
  @ApiOkResponse({ type: TaskRecordDto })
  @ApiResponse(ERRORS.badRequest)
  @ApiResponse(ERRORS.notFound)
  @ApiResponse(ERRORS.conflict)
  @ApiResponse(ERRORS.unavailable)
  async runNow(@Param() { id }: TaskIdParams): Promise<TaskRecordDto> {
    return taskJson(await this.client.runNow(id));
  }

  @Get('counts')
  @ApiOperation({
    summary: 'Tasks created per time bucket, per status (for a chart)',
    description:
      'Splits [from, to) into equal buckets. Needs the MongoDB archive (mongoUri); without it, 501.',
  })
  @ApiOkResponse({ type: TaskCountsDto })
  @ApiResponse(ERRORS.badRequest)
  @ApiResponse(ERRORS.notImplemented)
  @ApiResponse(ERRORS.unavailable)
  async counts(@Query() query: CountTasksQuery): Promise<TaskCountsDto> {
    const to = date('to', query.to) ?? new Date();
    const from = date('from', query.from) ?? new Date(to.getTime() - DEFAULT_COUNT_RANGE);
    const buckets = query.buckets ?? DEFAULT_COUNT_BUCKETS;
    if (from.getTime() >= to.getTime()) throw invalid('from', 'from must be before to');
    if (to.getTime() - from.getTime() < buckets) {
      throw invalid('buckets', 'buckets must not exceed the length of the range in milliseconds');
    }
    const counts = await this.client.countTasks({ from, to, buckets, name: query.name });
    return {
      from: from.toISOString(),
      to: to.toISOString(),
      buckets: counts.map((bucket) => ({
        ...bucket,
        from: bucket.from.toISOString(),
        to: bucket.to.toISOString(),
      })),
    };
  }

  @Get('queues')
  @ApiOperation({
    summary:
      'Per queue: ready and unacknowledged messages, and consumers; the dead-letter queue too',
    description:
      'Ready messages and consumers come from the broker; unacknowledged ones are those Cogman workers hold, as each reported in Redis within the last seconds (reportInterval).',
  })
  @ApiOkResponse({ type: QueuesDto })
  @ApiResponse(ERRORS.unavailable)
  queues(): Promise<QueuesDto> {
    return this.client.queues();
  }

  @Get('limits')
  @ApiOperation({
    summary:
      'Rate limits and group concurrency of the handlers of this process, as Redis holds them',
    description:
      'Per handler with a limit: the starts within its rate window and the attempts waiting for a turn; the groups with tasks running.',
  })
  @ApiOkResponse({ type: LimitsDto })
  @ApiResponse(ERRORS.unavailable)
  async limits(): Promise<LimitsDto> {
    return { limits: await this.client.limits() };
  }

  @Get('metrics')
  @Header('Content-Type', PROMETHEUS_CONTENT_TYPE)
  @ApiOperation({ summary: 'Prometheus metrics of this process (text format 0.0.4)' })
  @ApiProduces(PROMETHEUS_CONTENT_TYPE)
  @ApiOkResponse({ schema: { type: 'string' } })
  @ApiResponse({ status: 404, description: 'Metrics are off (metrics: false)', type: RestErrorDto })
  metrics(): Promise<string> {
    if (!this.cogmanMetrics) {
      throw new NotFoundException({
        code: 'COGMAN_METRICS_OFF',
        message: 'Metrics are off: set metrics: true in CogmanModule options (needs prom-client)',
      });
    }
    return this.cogmanMetrics.metrics();
  }
}

/** A record as JSON: dates in ISO 8601, a Buffer payload in base64. */
export function taskJson(record: TaskRecord): TaskRecordDto {
  const binary = Buffer.isBuffer(record.payload);
  return {
    taskId: record.taskId,
    name: record.name,
    originalTaskId: record.originalTaskId,
    primaryKey: record.primaryKey,
    retry: record.retry,
    attempt: record.attempt,
    priority: record.priority,
    headers: record.headers,
    payloadEncoding: binary ? 'base64' : 'json',
    payload: binary ? (record.payload as Buffer).toString('base64') : record.payload,
    status: record.status,
    failError: record.failError,
    duration: record.duration,
    startedAt: record.startedAt?.toISOString() ?? null,
    runAt: record.runAt?.toISOString() ?? null,
    createdAt: record.createdAt.toISOString(),
    updatedAt: record.updatedAt.toISOString(),
    ...resultJson(record),
  };
}

/** The result, its note and the progress, where the record has them (a Buffer in base64). */
function resultJson(
  record: TaskRecord,
): Pick<TaskRecordDto, 'result' | 'resultEncoding' | 'resultError' | 'progress'> {
  const json: Pick<TaskRecordDto, 'result' | 'resultEncoding' | 'resultError' | 'progress'> = {};
  if (record.result !== undefined) {
    const binary = Buffer.isBuffer(record.result);
    json.result = binary ? (record.result as Buffer).toString('base64') : record.result;
    json.resultEncoding = binary ? 'base64' : 'json';
  }
  if (record.resultError !== undefined) json.resultError = record.resultError;
  if (record.progress !== undefined) json.progress = record.progress;
  return json;
}

function date(field: string, text: string | undefined): Date | undefined {
  if (text === undefined) return undefined;
  const value = new Date(text);
  if (Number.isNaN(value.getTime())) throw invalid(field, `${field} is not a valid date`);
  return value;
}

function invalid(field: string, problem: string): BadRequestException {
  return new BadRequestException({
    code: 'COGMAN_REQUEST_INVALID',
    message: `Invalid request: ${problem}`,
    details: [{ field, problems: [problem] }],
  });
}
