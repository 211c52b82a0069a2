import type { ConsumeMessage, Options } from 'amqplib';
import { TaskInvalidError } from '../errors';
import { retryTaskId } from './task-id';
import type { BackoffPolicy, TaskInfo, TaskPriority, TaskRecord } from './task.interfaces';

export const JSON_CONTENT_TYPE = 'application/json';
export const BINARY_CONTENT_TYPE = 'application/octet-stream';

/** A payload as it travels: JSON text or raw bytes. */
export interface EncodedPayload {
  contentType: typeof JSON_CONTENT_TYPE | typeof BINARY_CONTENT_TYPE;
  body: Buffer;
}

/** Everything needed to publish, run and record one attempt of a task. */
export interface TaskEnvelope extends Omit<TaskInfo, 'retry'> {
  /** Settings given at send time; where undefined, the handler's apply. */
  retry?: number;
  timeout?: number;
  backoff?: BackoffPolicy;
  payload: EncodedPayload;
}

/**
 * AMQP headers. `TaskName` and `TaskID` (plus the message id) are what the Go Cogman library
 * sends and reads; the `x-cogman-*` ones carry what it did not have, and are optional on input.
 */
export const TASK_HEADERS = {
  name: 'TaskName',
  id: 'TaskID',
  attempt: 'x-cogman-attempt',
  retry: 'x-cogman-retry',
  originalTaskId: 'x-cogman-original-task-id',
  primaryKey: 'x-cogman-primary-key',
  createdAt: 'x-cogman-created-at',
  timeout: 'x-cogman-timeout',
  backoff: 'x-cogman-backoff',
} as const;

/** The header that carries a task's group (`SendTaskOptions.group`). */
export const GROUP_HEADER = 'cogman-group';

const RESERVED_HEADER = /^(taskname|taskid|x-cogman-.*)$/i;

export function isReservedHeader(name: string): boolean {
  return RESERVED_HEADER.test(name);
}

/** What identifies an attempt (`TaskInfo`), with the retries that apply to it. */
export function taskInfo(task: TaskEnvelope, retry: number): TaskInfo {
  return {
    taskId: task.taskId,
    name: task.name,
    originalTaskId: task.originalTaskId,
    primaryKey: task.primaryKey,
    retry,
    attempt: task.attempt,
    priority: task.priority,
    headers: task.headers,
    createdAt: task.createdAt,
  };
}

/** Turns a payload into bytes; a Buffer stays as it is, anything else must be JSON. */
export function encodePayload(payload: unknown): EncodedPayload {
  if (Buffer.isBuffer(payload)) return { contentType: BINARY_CONTENT_TYPE, body: payload };
  let text: string | undefined;
  try {
    text = JSON.stringify(payload === undefined ? null : payload);
  } catch (error) {
    throw new TaskInvalidError('payload', `cannot be serialised to JSON: ${message(error)}`, {
      cause: error,
    });
  }
  if (text === undefined) {
    throw new TaskInvalidError('payload', `cannot be serialised to JSON (${typeof payload})`);
  }
  const altered = alteredByJson(payload, 'payload');
  if (altered) throw new TaskInvalidError(altered.path, altered.reason);
  return { contentType: JSON_CONTENT_TYPE, body: Buffer.from(text) };
}

/** Built-in objects JSON turns into something else (mostly `{}`), with what to send instead. */
const ALTERED_BY_JSON: [type: new (...args: never[]) => object, instead: string][] = [
  [Map, 'an object or an array of entries (Object.fromEntries(map) or [...map])'],
  [Set, 'an array ([...set])'],
  [WeakMap, 'an object'],
  [WeakSet, 'an array'],
  [RegExp, 'its source as a string'],
  [Error, 'its message (and fields) as an object'],
  [Promise, 'the value it resolves to'],
  [ArrayBuffer, 'a Buffer, as the whole payload'],
];

/**
 * Where in a payload JSON would change a value (a Map or Set becomes `{}`, NaN becomes null, a
 * function disappears), and why; undefined when it arrives as it was sent. Plain objects, arrays,
 * strings, finite numbers, booleans, null, Dates (sent as ISO text) and objects of classes of
 * one's own (sent as their fields) pass. Called after `JSON.stringify`, which refuses cycles.
 */
function alteredByJson(value: unknown, path: string): { path: string; reason: string } | undefined {
  switch (typeof value) {
    case 'number':
      return Number.isFinite(value)
        ? undefined
        : { path, reason: `is ${String(value)}, which JSON sends as null` };
    case 'function':
    case 'symbol':
      return path === 'payload'
        ? undefined // JSON.stringify refused it already
        : { path, reason: `is a ${typeof value}, which JSON leaves out` };
    case 'object':
      break;
    default:
      return undefined;
  }
  if (value === null || value instanceof Date) return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const problem = alteredByJson(value[i], `${path}[${i}]`);
      if (problem) return problem;
    }
    return undefined;
  }
  for (const [type, instead] of ALTERED_BY_JSON) {
    if (value instanceof type) {
      return { path, reason: `is a ${type.name}, which JSON does not keep: send ${instead}` };
    }
  }
  if (ArrayBuffer.isView(value)) {
    return {
      path,
      reason: `is a ${value.constructor.name}, which JSON turns into ${Buffer.isBuffer(value) ? '{ type, data }' : 'an object of numbers'}: send a Buffer as the whole payload, or its base64 text`,
    };
  }
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return undefined;
  for (const key of Object.keys(value)) {
    const problem = alteredByJson((value as Record<string, unknown>)[key], `${path}.${key}`);
    if (problem) return problem;
  }
  return undefined;
}

/**
 * An attempt to publish again, rebuilt from its record. A record carries no timeout or backoff:
 * the attempt gets its handler's.
 */
export function envelopeOf(record: TaskRecord): TaskEnvelope {
  const {
    payload,
    status: _s,
    failError: _f,
    duration: _d,
    startedAt: _st,
    runAt: _r,
    updatedAt: _u,
    result: _result,
    resultError: _resultError,
    progress: _progress,
    ...info
  } = record;
  return { ...info, payload: encodePayload(payload) };
}

/** The attempt after `task`: same task, next attempt number, an id derived from both. */
export function nextAttempt(task: TaskEnvelope): TaskEnvelope {
  const attempt = task.attempt + 1;
  return {
    ...task,
    taskId: retryTaskId(task.originalTaskId, attempt),
    attempt,
    createdAt: new Date(),
  };
}

/** Turns bytes back into the payload a handler receives; throws on malformed JSON. */
export function decodePayload(payload: EncodedPayload): unknown {
  return payload.contentType === JSON_CONTENT_TYPE
    ? JSON.parse(payload.body.toString('utf8'))
    : payload.body;
}

/**
 * The message that carries one attempt. Headers that would say the default (first attempt, its
 * own original, no settings) are left out: fewer bytes to encode and decode on every message.
 */
export function toMessage(task: TaskEnvelope): { content: Buffer; options: Options.Publish } {
  const headers: Record<string, string | number> = {
    ...task.headers,
    [TASK_HEADERS.name]: task.name,
    [TASK_HEADERS.id]: task.taskId,
    // The AMQP timestamp has seconds only; the record's creation time is in milliseconds.
    [TASK_HEADERS.createdAt]: task.createdAt.getTime(),
  };
  if (task.attempt !== 1) headers[TASK_HEADERS.attempt] = task.attempt;
  if (task.originalTaskId !== task.taskId) {
    headers[TASK_HEADERS.originalTaskId] = task.originalTaskId;
  }
  if (task.primaryKey !== null) headers[TASK_HEADERS.primaryKey] = task.primaryKey;
  if (task.retry !== undefined) headers[TASK_HEADERS.retry] = task.retry;
  if (task.timeout !== undefined) headers[TASK_HEADERS.timeout] = task.timeout;
  if (task.backoff !== undefined) headers[TASK_HEADERS.backoff] = JSON.stringify(task.backoff);
  return {
    content: task.payload.body,
    options: {
      persistent: true,
      messageId: task.taskId,
      contentType: task.payload.contentType,
      timestamp: Math.floor(task.createdAt.getTime() / 1000),
      headers,
    },
  };
}

/** Why a delivery cannot be run; it goes to the dead-letter queue with this reason. */
export type DeadLetterReason =
  | 'missing_task_name'
  | 'missing_task_id'
  | 'unknown_task'
  | 'undecodable_payload'
  | 'delivery_limit';

export type DecodedDelivery =
  | {
      ok: true;
      task: TaskEnvelope;
      /** Not published by Cogman (no content type: the Go library's way); its record may not exist. */
      foreign: boolean;
    }
  | { ok: false; reason: DeadLetterReason; detail: string; taskId?: string; name?: string };

/**
 * Reads a delivery. Messages of the Go library (no `x-cogman-*` headers, no content type) are
 * a first attempt with no retries and a binary payload.
 */
export function fromDelivery(msg: ConsumeMessage, priority: TaskPriority): DecodedDelivery {
  const headers = (msg.properties.headers ?? {}) as Record<string, unknown>;
  const name = text(headers[TASK_HEADERS.name]);
  const taskId = text(headers[TASK_HEADERS.id]) ?? text(msg.properties.messageId);
  if (!name) {
    return {
      ok: false,
      reason: 'missing_task_name',
      detail: 'the TaskName header is missing or empty',
      taskId,
    };
  }
  if (!taskId) {
    return {
      ok: false,
      reason: 'missing_task_id',
      detail: 'neither a TaskID header nor a message id',
      name,
    };
  }
  // Creation time: the header, else the AMQP timestamp (seconds), else now.
  const stamp = integer(msg.properties.timestamp);
  const createdAt =
    integer(headers[TASK_HEADERS.createdAt]) ?? (stamp === undefined ? undefined : stamp * 1000);
  return {
    ok: true,
    foreign: msg.properties.contentType === undefined,
    task: {
      ...settings(headers),
      taskId,
      name,
      originalTaskId: text(headers[TASK_HEADERS.originalTaskId]) ?? taskId,
      primaryKey: text(headers[TASK_HEADERS.primaryKey]) ?? null,
      attempt: integer(headers[TASK_HEADERS.attempt]) ?? 1,
      priority,
      headers: customHeaders(headers),
      createdAt: createdAt === undefined ? new Date() : new Date(createdAt),
      payload: {
        contentType:
          msg.properties.contentType === JSON_CONTENT_TYPE
            ? JSON_CONTENT_TYPE
            : BINARY_CONTENT_TYPE,
        body: msg.content,
      },
    },
  };
}

/** Retry, timeout and backoff given at send time (absent from Go messages). */
function settings(
  headers: Record<string, unknown>,
): Pick<TaskEnvelope, 'retry' | 'timeout' | 'backoff'> {
  const out: Pick<TaskEnvelope, 'retry' | 'timeout' | 'backoff'> = {};
  const retry = integer(headers[TASK_HEADERS.retry]);
  const timeout = integer(headers[TASK_HEADERS.timeout]);
  const backoff = parseBackoff(text(headers[TASK_HEADERS.backoff]));
  if (retry !== undefined) out.retry = retry;
  if (timeout !== undefined && timeout > 0) out.timeout = timeout;
  if (backoff !== undefined) out.backoff = backoff;
  return out;
}

/** A backoff policy read back from JSON, or undefined when it is not a valid one. */
export function parseBackoff(json: string | undefined): BackoffPolicy | undefined {
  if (!json) return undefined;
  try {
    const value = JSON.parse(json) as unknown;
    return backoffProblem(value) === null ? (value as BackoffPolicy) : undefined;
  } catch {
    return undefined;
  }
}

/** Why `value` is not a backoff policy, or null when it is one. */
export function backoffProblem(value: unknown): string | null {
  if (typeof value === 'function') {
    return 'cannot be a function when sending a task (functions do not travel; set one on the handler)';
  }
  if (typeof value !== 'object' || value === null) return 'must be a backoff policy object';
  const { type, delay, maxDelay, jitter } = value as Record<string, unknown>;
  const duration = (n: unknown) => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
  if (type !== 'exponential' && type !== 'fixed') return 'type must be "exponential" or "fixed"';
  if (type === 'fixed' && !duration(delay)) return 'delay must be a whole number of milliseconds';
  if (delay !== undefined && !duration(delay))
    return 'delay must be a whole number of milliseconds';
  if (maxDelay !== undefined && (type !== 'exponential' || !duration(maxDelay))) {
    return 'maxDelay must be a whole number of milliseconds (exponential only)';
  }
  if (jitter !== undefined && typeof jitter !== 'boolean') return 'jitter must be true or false';
  const extra = Object.keys(value).filter(
    (key) => !['type', 'delay', 'maxDelay', 'jitter'].includes(key),
  );
  if (extra.length > 0) return `has unknown field "${extra[0]}"`;
  return null;
}

function text(value: unknown): string | undefined {
  if (typeof value === 'string') return value || undefined;
  if (Buffer.isBuffer(value)) return value.toString('utf8') || undefined;
  return undefined;
}

function integer(value: unknown): number | undefined {
  const n = typeof value === 'string' ? Number(value) : value;
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/** The string headers other than Cogman's own: those given at send time. */
function customHeaders(headers: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key in headers) {
    // Cogman's own headers, by far the most common, are known without the pattern.
    if (COGMAN_HEADER_NAMES.has(key)) continue;
    const value = headers[key];
    if (typeof value === 'string' && !isReservedHeader(key)) out[key] = value;
  }
  return out;
}

const COGMAN_HEADER_NAMES: ReadonlySet<string> = new Set(Object.values(TASK_HEADERS));

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
