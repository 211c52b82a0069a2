import {
  BadRequestException,
  Body,
  Get,
  HttpCode,
  Post,
  Query,
  Sse,
  UseGuards,
  type MessageEvent,
} from '@nestjs/common';
import { ApiBody, ApiOkResponse, ApiOperation, ApiProduces, ApiResponse } from '@nestjs/swagger';
import { map, type Observable } from 'rxjs';
import type { DeadLetter } from '../broker/dead-letter.queue';
import { BulkActionsService } from '../client/bulk-actions.service';
import { CogmanClient } from '../client/cogman.client';
import { DeadLetterService } from '../client/dead-letters.service';
import {
  BulkActionBody,
  DeadLetterActionBody,
  DeadLettersQuery,
  DEFAULT_BULK_MAX,
  DEFAULT_DEAD_LETTER_LIMIT,
} from './dto/operations.inputs';
import {
  BulkActionDto,
  DeadLetterActionDto,
  DeadLetterDto,
  DeadLettersDto,
  OverviewDto,
  WorkersDto,
} from './dto/operations.responses';
import { RestErrorDto } from './dto/service.responses';
import { BulkBodyGuard, DeadLetterBodyGuard } from './json-body.guard';
import { OverviewSnapshot, workerJson } from './overview.snapshot';
import { CogmanRestController } from './rest-controller.decorator';
import { DEAD_LETTER_BATCH_MAX } from '../broker/dead-letter.queue';
import { WORKER_REPORT_INTERVAL } from '../worker/worker-directory';

const BAD_REQUEST = { status: 400, description: 'Invalid input', type: RestErrorDto };
const UNAVAILABLE = {
  status: 503,
  description: 'RabbitMQ, Redis or MongoDB is unreachable',
  type: RestErrorDto,
};
/** Most bytes of a dead letter's body shown. */
const PREVIEW_BYTES = 64 * 1024;

/**
 * The REST API's operations view (what the dashboard shows and does): a shared overview, live by
 * server-sent events; the worker processes; the dead-letter queue (list, redrive, discard); bulk
 * retry and cancel. Mounted beside `CogmanController`, under the same prefix and access rules.
 */
@CogmanRestController()
export class CogmanOperationsController {
  constructor(
    private readonly client: CogmanClient,
    private readonly snapshot: OverviewSnapshot,
    private readonly deadLetters: DeadLetterService,
    private readonly bulk: BulkActionsService,
  ) {}

  @Get('overview')
  @ApiOperation({
    summary: 'Queues, workers, dead letters, connections and warnings, in one snapshot',
    description:
      'The snapshot the stream sends, shared by every client and computed at most once per interval.',
  })
  @ApiOkResponse({ type: OverviewDto })
  overview(): Promise<OverviewDto> {
    return this.snapshot.current();
  }

  @Sse('overview/stream')
  @ApiOperation({
    summary: 'The overview, live: a server-sent event `overview` per interval',
    description:
      'One snapshot is computed per interval for all open streams, and none while no stream is open. Each event’s data is the JSON of `GET /overview`.',
  })
  @ApiProduces('text/event-stream')
  @ApiOkResponse({ description: 'An event stream', schema: { type: 'string' } })
  stream(): Observable<MessageEvent> {
    return this.snapshot.stream.pipe(map((data) => ({ type: 'overview', data })));
  }

  @Get('workers')
  @ApiOperation({
    summary: 'The worker processes: host, pid, concurrency, running tasks, last report',
    description: 'From the reports each worker writes to Redis every reportInterval.',
  })
  @ApiOkResponse({ type: WorkersDto })
  @ApiResponse(UNAVAILABLE)
  async workers(): Promise<WorkersDto> {
    const workers = await this.client.workers();
    return { workers: workers.map(workerJson), reportInterval: WORKER_REPORT_INTERVAL };
  }

  @Get('dead-letters')
  @ApiOperation({
    summary: 'Messages of the dead-letter queue, from its head, with their reason',
    description: 'Read without taking them (each is received and given back at once), at most 500.',
  })
  @ApiOkResponse({ type: DeadLettersDto })
  @ApiResponse(BAD_REQUEST)
  @ApiResponse(UNAVAILABLE)
  async listDeadLetters(@Query() query: DeadLettersQuery): Promise<DeadLettersDto> {
    const limit = query.limit ?? DEFAULT_DEAD_LETTER_LIMIT;
    const { total, items } = await this.deadLetters.list(limit);
    return { total, items: items.map(deadLetterJson), limit };
  }

  @Post('dead-letters/redrive')
  @HttpCode(200)
  @UseGuards(DeadLetterBodyGuard)
  @ApiOperation({
    summary: 'Send dead letters back: some (by key) or all, a bounded batch per call',
    description:
      'A message of a task whose current attempt failed (as a dead-lettered task’s has) is retried as a new attempt; any other goes back to the queue it came from as it was. Looks at `limit` messages from the head of the queue (at most 500): call again while `remaining` says more.',
  })
  @ApiBody({ type: DeadLetterActionBody })
  @ApiOkResponse({ type: DeadLetterActionDto })
  @ApiResponse(BAD_REQUEST)
  @ApiResponse({ status: 415, description: 'The body is not JSON', type: RestErrorDto })
  @ApiResponse(UNAVAILABLE)
  redrive(@Body() body: DeadLetterActionBody): Promise<DeadLetterActionDto> {
    return this.deadLetters.redrive(selection(body));
  }

  @Post('dead-letters/discard')
  @HttpCode(200)
  @UseGuards(DeadLetterBodyGuard)
  @ApiOperation({
    summary: 'Delete dead letters: some (by key) or all, a bounded batch per call',
    description: 'Looks at `limit` messages from the head of the queue (at most 500).',
  })
  @ApiBody({ type: DeadLetterActionBody })
  @ApiOkResponse({ type: DeadLetterActionDto })
  @ApiResponse(BAD_REQUEST)
  @ApiResponse({ status: 415, description: 'The body is not JSON', type: RestErrorDto })
  @ApiResponse(UNAVAILABLE)
  discard(@Body() body: DeadLetterActionBody): Promise<DeadLetterActionDto> {
    return this.deadLetters.discard(selection(body));
  }

  @Post('tasks/bulk')
  @HttpCode(200)
  @UseGuards(BulkBodyGuard)
  @ApiOperation({
    summary: 'Retry or cancel many tasks: by id, or every task matching a filter',
    description:
      'With `filter` (the filters of `GET /tasks`; needs the MongoDB archive), goes through at most `max` matching tasks, a page of 100 at a time. Tasks whose status does not allow the action are counted in `conflicts`.',
  })
  @ApiBody({ type: BulkActionBody })
  @ApiOkResponse({ type: BulkActionDto })
  @ApiResponse(BAD_REQUEST)
  @ApiResponse({ status: 415, description: 'The body is not JSON', type: RestErrorDto })
  @ApiResponse({
    status: 501,
    description: 'A filter needs the MongoDB archive',
    type: RestErrorDto,
  })
  @ApiResponse(UNAVAILABLE)
  bulkAction(@Body() body: BulkActionBody): Promise<BulkActionDto> {
    if ((body.taskIds === undefined) === (body.filter === undefined)) {
      throw invalid('taskIds', 'give either taskIds or filter');
    }
    if (body.taskIds) return this.bulk.byIds(body.action, body.taskIds);
    const { from, to, ...filter } = body.filter!;
    const start = from === undefined ? undefined : new Date(from);
    const end = to === undefined ? undefined : new Date(to);
    if (start && end && start.getTime() > end.getTime()) {
      throw invalid('filter.from', 'from must not be after to');
    }
    return this.bulk.byFilter(
      body.action,
      { ...filter, from: start, to: end },
      body.max ?? DEFAULT_BULK_MAX,
    );
  }
}

function selection(body: DeadLetterActionBody) {
  if ((body.keys === undefined) === (body.all !== true)) {
    throw invalid('keys', 'give either keys or all: true');
  }
  return { keys: body.keys, all: body.all === true, limit: body.limit ?? DEAD_LETTER_BATCH_MAX };
}

function deadLetterJson(letter: DeadLetter): DeadLetterDto {
  const { content } = letter;
  let json: { ok: true; value: unknown } | { ok: false } = { ok: false };
  if (content.length <= PREVIEW_BYTES && /json/i.test(letter.contentType ?? 'json')) {
    try {
      json = { ok: true, value: JSON.parse(content.toString('utf8')) as unknown };
    } catch {
      // not JSON: shown as bytes
    }
  }
  return {
    key: letter.key,
    taskId: letter.taskId,
    taskName: letter.taskName,
    reason: letter.reason,
    detail: letter.detail,
    queue: letter.queue,
    deadLetteredAt: letter.deadLetteredAt,
    contentType: letter.contentType,
    size: content.length,
    payloadEncoding: json.ok ? 'json' : 'base64',
    payload: json.ok ? json.value : content.subarray(0, PREVIEW_BYTES).toString('base64'),
    headers: headersJson(letter.headers),
  };
}

/** AMQP header values as JSON: bytes as text, nested tables as they are. */
function headersJson(headers: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(headers)) {
    out[name] = Buffer.isBuffer(value) ? value.toString('utf8') : value;
  }
  return out;
}

function invalid(field: string, problem: string): BadRequestException {
  return new BadRequestException({
    code: 'COGMAN_REQUEST_INVALID',
    message: `Invalid request: ${problem}`,
    details: [{ field, problems: [problem] }],
  });
}
