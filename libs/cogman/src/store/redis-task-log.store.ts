import { Inject, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { RESOLVED_OPTIONS } from '../cogman.constants';
import type { ResolvedCogmanOptions } from '../config';
import {
  BINARY_CONTENT_TYPE,
  decodePayload,
  isTaskStatus,
  JSON_CONTENT_TYPE,
  parseBackoff,
  TASK_STATUS_RANK,
  type EncodedPayload,
  type TaskEnvelope,
  type TaskPriority,
  type TaskRecord,
} from '../task';
import { COGMAN_REDIS } from './redis-connection';
import type {
  StoredTask,
  TaskLogStore,
  TaskStatusChange,
  TaskStatusResult,
} from './task-log.store';

const RANKS = Object.entries(TASK_STATUS_RANK)
  .map(([status, rank]) => `${status}=${rank}`)
  .join(', ');

/**
 * Applies one status change in one step, so concurrent writers never lose an update:
 * descriptive fields are only added when missing (HSETNX), the status and its fields only when
 * the status moves forward, the schedule follows the status, and the TTL is set in the same step.
 *
 * KEYS: task hash, schedule (zset), claims (zset), guard (the hash of an attempt whose
 * cancellation vetoes the change, or the task hash itself when there is none).
 * ARGV: taskId, status, ttl (ms), updatedAt (ms), runAt (ms or ''), n, n describe pairs, then the
 * status pairs. Returns {applied (0/1), previous status or ''}.
 */
const RECORD_SCRIPT = `
local ranks = { ${RANKS} }
local key, id, status = KEYS[1], ARGV[1], ARGV[2]
if KEYS[4] ~= key and redis.call('HGET', KEYS[4], 'status') == 'cancelled' then
  return { 0, 'cancelled' }
end
local previous = redis.call('HGET', key, 'status')
local first = 7 + 2 * tonumber(ARGV[6])
for i = 7, first - 1, 2 do
  redis.call('HSETNX', key, ARGV[i], ARGV[i + 1])
end
local applied = 0
if not previous or (ranks[previous] or 0) < ranks[status] then
  local fields = { 'status', status, 'updatedAt', ARGV[4] }
  for i = first, #ARGV do
    fields[#fields + 1] = ARGV[i]
  end
  redis.call('HSET', key, unpack(fields))
  applied = 1
  if status == 'scheduled' and ARGV[5] ~= '' then
    redis.call('ZADD', KEYS[2], ARGV[5], id)
  elseif previous == 'scheduled' then
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZREM', KEYS[3], id)
  end
end
redis.call('PEXPIRE', key, ARGV[3])
return { applied, previous or '' }
`;

/**
 * Takes due attempts off the schedule into the claims set, leased until now + lease. Claims whose
 * lease ran out (a scheduler died between claiming and publishing) are due again first.
 * KEYS: schedule, claims. ARGV: now (ms), limit, lease (ms).
 */
const CLAIM_DUE_SCRIPT = `
local now, limit, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, limit)) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZADD', KEYS[1], now, id)
end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit)
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[2], now + lease, id)
end
return due
`;

/** Takes one attempt off the schedule. KEYS: schedule, claims. ARGV: id, lease until (ms). */
const CLAIM_ONE_SCRIPT = `
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
`;

type Command<T> = (...args: (string | number)[]) => Promise<T>;

/**
 * The task log in Redis: one hash per attempt under `cogman:[namespace:]task:<id>`, and the
 * schedule of delayed attempts (`…:scheduled`, a sorted set by due time, with `…:claimed`).
 */
@Injectable()
export class RedisTaskLogStore implements TaskLogStore {
  private readonly prefix: string;
  private readonly scheduleKey: string;
  private readonly claimsKey: string;
  private readonly recordScript: Command<[number, string]>;
  private readonly claimDueScript: Command<string[]>;
  private readonly claimOneScript: Command<number>;

  constructor(
    @Inject(COGMAN_REDIS) private readonly redis: Redis,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedCogmanOptions,
  ) {
    this.prefix = options.namespace ? `cogman:${options.namespace}:` : 'cogman:';
    this.scheduleKey = `${this.prefix}scheduled`;
    this.claimsKey = `${this.prefix}scheduled:claimed`;
    this.recordScript = script(redis, 'cogmanRecord', 4, RECORD_SCRIPT);
    this.claimDueScript = script(redis, 'cogmanClaimDue', 2, CLAIM_DUE_SCRIPT);
    this.claimOneScript = script(redis, 'cogmanClaimOne', 2, CLAIM_ONE_SCRIPT);
  }

  get available(): boolean {
    return this.redis.status === 'ready';
  }

  key(taskId: string): string {
    return `${this.prefix}task:${taskId}`;
  }

  async record(change: TaskStatusChange): Promise<TaskStatusResult> {
    const describe = change.task ? describeFields(change.task) : [];
    const fields: string[] = [];
    if (change.failError !== undefined) fields.push('failError', change.failError);
    if (change.duration !== undefined) fields.push('duration', String(change.duration));
    if (change.retry !== undefined) fields.push('retry', String(change.retry));
    if (change.runAt !== undefined) fields.push('runAt', String(change.runAt.getTime()));
    const key = this.key(change.taskId);
    const [applied, previous] = await this.recordScript(
      key,
      this.scheduleKey,
      this.claimsKey,
      change.unlessCancelled ? this.key(change.unlessCancelled) : key,
      change.taskId,
      change.status,
      this.options.redisTtl,
      change.at.getTime(),
      change.runAt?.getTime() ?? '',
      describe.length / 2,
      ...describe,
      ...fields,
    );
    return { applied: applied === 1, previous: isTaskStatus(previous) ? previous : null };
  }

  async get(taskId: string): Promise<TaskRecord | null> {
    return (await this.load(taskId))?.record ?? null;
  }

  async load(taskId: string): Promise<StoredTask | null> {
    const hash = await this.redis.hgetall(this.key(taskId));
    return isTaskStatus(hash.status) ? fromHash(taskId, hash) : null;
  }

  claimDue(now: Date, limit: number, leaseMs: number): Promise<string[]> {
    return this.claimDueScript(this.scheduleKey, this.claimsKey, now.getTime(), limit, leaseMs);
  }

  async claim(taskId: string, now: Date, leaseMs: number): Promise<boolean> {
    const until = now.getTime() + leaseMs;
    return (await this.claimOneScript(this.scheduleKey, this.claimsKey, taskId, until)) === 1;
  }

  async release(taskId: string): Promise<void> {
    await this.redis.zrem(this.claimsKey, taskId);
  }
}

/** A Lua script as an ioredis command (EVALSHA, falling back to EVAL; auto-pipelined). */
function script<T>(redis: Redis, name: string, keys: number, lua: string): Command<T> {
  if (!(name in redis)) redis.defineCommand(name, { numberOfKeys: keys, lua });
  return (redis as unknown as Record<string, Command<T>>)[name].bind(redis);
}

function describeFields(task: TaskEnvelope): string[] {
  const binary = task.payload.contentType === BINARY_CONTENT_TYPE;
  const fields = [
    ['taskId', task.taskId],
    ['name', task.name],
    ['originalTaskId', task.originalTaskId],
    ['attempt', String(task.attempt)],
    ['priority', task.priority],
    ['payloadType', binary ? 'binary' : 'json'],
    ['payload', task.payload.body.toString(binary ? 'base64' : 'utf8')],
    ['headers', JSON.stringify(task.headers)],
    ['createdAt', String(task.createdAt.getTime())],
  ];
  if (task.primaryKey !== null) fields.push(['primaryKey', task.primaryKey]);
  if (task.retry !== undefined) fields.push(['retry', String(task.retry)]);
  if (task.timeout !== undefined) fields.push(['timeout', String(task.timeout)]);
  if (task.backoff !== undefined) fields.push(['backoff', JSON.stringify(task.backoff)]);
  return fields.flat();
}

function fromHash(taskId: string, hash: Record<string, string>): StoredTask {
  const binary = hash.payloadType === 'binary';
  const payload: EncodedPayload = {
    contentType: binary ? BINARY_CONTENT_TYPE : JSON_CONTENT_TYPE,
    body: Buffer.from(hash.payload ?? 'null', binary ? 'base64' : 'utf8'),
  };
  const number = (field: string) => (hash[field] === undefined ? undefined : Number(hash[field]));
  const date = (field: string) =>
    hash[field] === undefined ? null : new Date(Number(hash[field]));
  const task: TaskEnvelope = {
    taskId: hash.taskId ?? taskId,
    name: hash.name ?? '',
    originalTaskId: hash.originalTaskId ?? taskId,
    primaryKey: hash.primaryKey ?? null,
    attempt: number('attempt') ?? 1,
    priority: (hash.priority as TaskPriority | undefined) ?? 'low',
    headers: hash.headers ? (JSON.parse(hash.headers) as Record<string, string>) : {},
    createdAt: date('createdAt') ?? date('updatedAt')!,
    payload,
  };
  const retry = number('retry');
  const timeout = number('timeout');
  const backoff = parseBackoff(hash.backoff);
  if (retry !== undefined) task.retry = retry;
  if (timeout !== undefined) task.timeout = timeout;
  if (backoff !== undefined) task.backoff = backoff;
  const { payload: _payload, timeout: _timeout, backoff: _backoff, ...info } = task;
  return {
    task,
    record: {
      ...info,
      retry: retry ?? 0,
      payload: readPayload(payload),
      status: hash.status as TaskRecord['status'],
      failError: hash.failError ?? null,
      duration: number('duration') ?? null,
      runAt: date('runAt'),
      updatedAt: date('updatedAt')!,
    },
  };
}

/** The payload as sent; bytes that were meant as JSON but do not parse come back as bytes. */
function readPayload(payload: EncodedPayload): unknown {
  try {
    return decodePayload(payload);
  } catch {
    return payload.body;
  }
}
