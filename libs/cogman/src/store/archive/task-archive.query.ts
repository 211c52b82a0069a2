import { TaskQueryInvalidError } from '../../errors';
import {
  BINARY_CONTENT_TYPE,
  decodePayload,
  isTaskStatus,
  readResult,
  JSON_CONTENT_TYPE,
  type EncodedPayload,
  type TaskEnvelope,
  type TaskRecord,
  type TaskStatus,
} from '../../task';
import { TASK_LIST_MAX_LIMIT, type TaskCountQuery, type TaskListQuery } from '../task-archive';
import type { TaskDocument } from './task.schema';

/** A MongoDB filter built here from checked, plain values. */
export type ArchiveFilter = Record<string, unknown>;

/** Most buckets one count query may ask for. */
export const TASK_COUNT_MAX_BUCKETS = 1000;

/** A listing, checked: the filter of every page, the sort, the page size and where it starts. */
export interface ListPlan {
  filter: ArchiveFilter;
  /** 1 for oldest first, -1 for newest first. */
  direction: 1 | -1;
  limit: number;
  after: ListCursor | null;
}

/** Position after the last item of a page: its creation date and id. */
export interface ListCursor {
  createdAt: number;
  taskId: string;
}

/**
 * Checks a listing query and turns it into a filter. Every value must be of its plain type and
 * is matched with `$eq` or `$in`, so nothing a caller passes can become a query operator.
 */
export function planList(query: TaskListQuery): ListPlan {
  if (typeof query !== 'object' || query === null) {
    throw new TaskQueryInvalidError('query', 'must be an object');
  }
  const filter: ArchiveFilter = {};
  if (query.status !== undefined) {
    if (!Array.isArray(query.status) || !query.status.every(isTaskStatus)) {
      throw new TaskQueryInvalidError('status', 'must be a list of task statuses');
    }
    if (query.status.length > 0) filter.status = { $in: [...new Set(query.status)] };
  }
  const text = (field: keyof TaskListQuery, path: keyof TaskDocument) => {
    const value = query[field];
    if (value === undefined) return;
    if (typeof value !== 'string' || value === '') {
      throw new TaskQueryInvalidError(field, 'must be a non-empty string');
    }
    filter[path] = { $eq: value };
  };
  text('name', 'name');
  text('primaryKey', 'primary_key');
  text('originalTaskId', 'original_task_id');
  if (query.error !== undefined) {
    if (typeof query.error !== 'string' || query.error === '') {
      throw new TaskQueryInvalidError('error', 'must be a non-empty string');
    }
    // Escaped: the text is matched as it is, never as a pattern.
    filter.fail_error = {
      $regex: query.error.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),
      $options: 'i',
    };
  }
  if (query.priority !== undefined) {
    if (query.priority !== 'high' && query.priority !== 'low') {
      throw new TaskQueryInvalidError('priority', 'must be "high" or "low"');
    }
    filter.priority = { $eq: query.priority };
  }
  const from = optionalDate('from', query.from);
  const to = optionalDate('to', query.to);
  if (from && to && from.getTime() > to.getTime()) {
    throw new TaskQueryInvalidError('from', 'must not be after "to"');
  }
  if (from || to) {
    filter.created_at = { ...(from && { $gte: from }), ...(to && { $lte: to }) };
  }
  if (query.order !== undefined && query.order !== 'asc' && query.order !== 'desc') {
    throw new TaskQueryInvalidError('order', 'must be "asc" or "desc"');
  }
  if (!Number.isSafeInteger(query.limit) || query.limit < 1) {
    throw new TaskQueryInvalidError('limit', 'must be a whole number of 1 or more');
  }
  return {
    filter,
    direction: query.order === 'asc' ? 1 : -1,
    limit: Math.min(query.limit, TASK_LIST_MAX_LIMIT),
    after: query.cursor === undefined ? null : decodeCursor(query.cursor),
  };
}

/** The filter of one page: the listing's, past the cursor in the listing's order. */
export function pageFilter(plan: ListPlan): ArchiveFilter {
  if (!plan.after) return plan.filter;
  const past = plan.direction === 1 ? '$gt' : '$lt';
  const at = new Date(plan.after.createdAt);
  return {
    $and: [
      plan.filter,
      {
        $or: [
          { created_at: { [past]: at } },
          { created_at: { $eq: at }, task_id: { [past]: plan.after.taskId } },
        ],
      },
    ],
  };
}

/** An opaque, URL-safe cursor. */
export function encodeCursor(cursor: ListCursor): string {
  return Buffer.from(JSON.stringify([cursor.createdAt, cursor.taskId])).toString('base64url');
}

export function decodeCursor(cursor: unknown): ListCursor {
  const invalid = () =>
    new TaskQueryInvalidError('cursor', 'is not a cursor returned by a previous page');
  if (typeof cursor !== 'string' || cursor === '' || cursor.length > 1024) throw invalid();
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  if (
    !Array.isArray(value) ||
    value.length !== 2 ||
    !Number.isSafeInteger(value[0]) ||
    typeof value[1] !== 'string' ||
    value[1] === ''
  ) {
    throw invalid();
  }
  return { createdAt: value[0] as number, taskId: value[1] };
}

/** One interval of a count query, `[from, to)`. */
export interface BucketBounds {
  from: Date;
  to: Date;
}

/**
 * Splits `[from, to)` into `buckets` intervals of equal length (to the millisecond: lengths
 * differ by at most 1 ms), contiguous, the first starting at `from` and the last ending at `to`.
 */
export function bucketBounds(query: TaskCountQuery): BucketBounds[] {
  if (typeof query !== 'object' || query === null) {
    throw new TaskQueryInvalidError('query', 'must be an object');
  }
  const from = requiredDate('from', query.from).getTime();
  const to = requiredDate('to', query.to).getTime();
  if (from >= to) throw new TaskQueryInvalidError('to', 'must be after "from"');
  const { buckets } = query;
  if (!Number.isSafeInteger(buckets) || buckets < 1 || buckets > TASK_COUNT_MAX_BUCKETS) {
    throw new TaskQueryInvalidError(
      'buckets',
      `must be a whole number from 1 to ${TASK_COUNT_MAX_BUCKETS}`,
    );
  }
  const span = to - from;
  if (span < buckets) {
    throw new TaskQueryInvalidError('buckets', `must not exceed the range in ms (${span})`);
  }
  const edge = (i: number) => new Date(from + Math.floor((span * i) / buckets));
  return Array.from({ length: buckets }, (_, i) => ({ from: edge(i), to: edge(i + 1) }));
}

/** The filter of one bucket of a count query. */
export function bucketFilter(bucket: BucketBounds, name: unknown): ArchiveFilter {
  const filter: ArchiveFilter = { created_at: { $gte: bucket.from, $lt: bucket.to } };
  if (name !== undefined) {
    if (typeof name !== 'string' || name === '') {
      throw new TaskQueryInvalidError('name', 'must be a non-empty string');
    }
    filter.name = { $eq: name };
  }
  return filter;
}

/** Zero for every status. */
export function emptyCounts(): Record<TaskStatus, number> {
  return {
    initiated: 0,
    scheduled: 0,
    queued: 0,
    in_progress: 0,
    retry: 0,
    success: 0,
    failed: 0,
    cancelled: 0,
  };
}

function optionalDate(field: string, value: unknown): Date | undefined {
  return value === undefined ? undefined : requiredDate(field, value);
}

function requiredDate(field: string, value: unknown): Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) {
    throw new TaskQueryInvalidError(field, 'must be a valid Date');
  }
  return value;
}

/** A document as read back (lean): the payload may come as a BSON Binary. */
export type StoredTaskDocument = Omit<Partial<TaskDocument>, 'payload' | 'result'> & {
  _id: string;
  payload?: unknown;
  result?: unknown;
};

/** The record of an archived attempt; null for a document without a valid status. */
export function toTaskRecord(doc: StoredTaskDocument): TaskRecord | null {
  if (!isTaskStatus(doc.status)) return null;
  const envelope = toTaskEnvelope(doc);
  const { payload, timeout: _timeout, backoff: _backoff, retry, ...info } = envelope;
  return {
    ...info,
    retry: retry ?? 0,
    payload: readPayload(payload),
    runAt: doc.run_at ?? null,
    status: doc.status,
    failError: doc.fail_error ?? null,
    duration: doc.duration ?? null,
    startedAt: doc.started_at ?? null,
    updatedAt: doc.updated_at ?? envelope.createdAt,
    ...archivedExtras(doc),
  };
}

/** The result, its note and the progress of a document, where it has them. */
function archivedExtras(
  doc: StoredTaskDocument,
): Pick<TaskRecord, 'result' | 'resultError' | 'progress'> {
  const extras: Pick<TaskRecord, 'result' | 'resultError' | 'progress'> = {};
  const result = bytes(doc.result);
  if (result) {
    extras.result = readResult({
      contentType: doc.result_type === 'binary' ? BINARY_CONTENT_TYPE : JSON_CONTENT_TYPE,
      body: result,
    });
  }
  if (typeof doc.result_error === 'string') extras.resultError = doc.result_error;
  if (typeof doc.progress === 'string') {
    try {
      extras.progress = JSON.parse(doc.progress);
    } catch {
      extras.progress = doc.progress;
    }
  }
  return extras;
}

/** The attempt as it was sent, payload encoded, ready to publish again. */
export function toTaskEnvelope(doc: StoredTaskDocument): TaskEnvelope {
  const taskId = doc.task_id ?? doc._id;
  return {
    taskId,
    name: doc.name ?? '',
    originalTaskId: doc.original_task_id ?? taskId,
    primaryKey: doc.primary_key ?? null,
    ...(doc.retry === undefined || doc.retry === null ? {} : { retry: doc.retry }),
    ...(doc.timeout === undefined || doc.timeout === null ? {} : { timeout: doc.timeout }),
    ...(doc.backoff ? { backoff: doc.backoff } : {}),
    attempt: doc.attempt ?? 1,
    priority: doc.priority ?? 'low',
    headers: Object.fromEntries((doc.headers ?? []).map(({ name, value }) => [name, value])),
    createdAt: doc.created_at ?? doc.updated_at ?? new Date(0),
    payload: {
      contentType: doc.payload_type === 'binary' ? BINARY_CONTENT_TYPE : JSON_CONTENT_TYPE,
      body: bytes(doc.payload) ?? Buffer.from('null'),
    },
  };
}

/** A stored payload as a Buffer, whether the driver returned a Buffer or a BSON Binary. */
function bytes(value: unknown): Buffer | undefined {
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.length);
  if (isBinary(value)) {
    const data = value.read(0, value.length());
    return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  }
  return undefined;
}

function isBinary(
  value: unknown,
): value is { read(position: number, length: number): Uint8Array; length(): number } {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { _bsontype?: unknown })._bsontype === 'Binary'
  );
}

/** The payload as sent; bytes that were meant as JSON but do not parse come back as bytes. */
function readPayload(payload: EncodedPayload): unknown {
  try {
    return decodePayload(payload);
  } catch {
    return payload.body;
  }
}
