import { Inject, Injectable } from '@nestjs/common';
import { RESOLVED_OPTIONS, type ResolvedCogmanOptions } from '../config';
import {
  BINARY_CONTENT_TYPE,
  decodePayload,
  isTaskStatus,
  JSON_CONTENT_TYPE,
  readResult,
  TASK_STATUS_RANK,
  type EncodedPayload,
  type TaskEnvelope,
  type TaskPriority,
  type TaskRecord,
} from '../task';
import { COGMAN_REDIS, isCluster, onReconnect, type CogmanRedis } from './redis-connection';
import { legacyRedisKeys, redisKeys, type RedisKeys } from './redis-keys';
import type {
  AttemptState,
  StoredTask,
  TaskLogStore,
  TaskStatusChange,
  TaskStatusResult,
} from './task-log.store';

const RANKS = Object.entries(TASK_STATUS_RANK)
  .map(([status, rank]) => `${status}=${rank}`)
  .join(', ');

/**
 * Applies status changes, each in one step, so concurrent writers never lose an update:
 * descriptive fields are only added to a record that lacks them, the status and its fields only
 * when the status moves forward, the schedule follows the status, and the TTL is set in the same
 * step (for a scheduled attempt, counted from its due time).
 * The changes made in one tick of the event loop travel together, in one call.
 *
 * KEYS: the schedule, its claims, the cancelled set, then every task key the changes touch (their
 * own and their guards', each once). All carry the namespace's hash tag: one Redis Cluster slot.
 * ARGV: ttl (ms), the changes as one JSON array (one string to build and send instead of ten
 * arguments a change), the cancellation channel, the results channel, the length of the task key
 * prefix (a task's id is its key after it), then the payloads of the changes that describe their
 * attempt (each its own argument, sent as the bytes they are: neither escaped into the JSON nor
 * decoded by the script). A cancellation that applies also enters the cancelled set (until the
 * record's TTL has passed) and is published on the channel. A finished status that applies to a
 * record someone waits for (its `waited` field, set by the result watcher's script) is published
 * on the results channel: a record nobody waits for costs only the field's read. Each change is
 * an array: the index in KEYS of its task key, status, updatedAt (ms), runAt (ms or ''), the
 * index in KEYS of its guard (the key of an attempt whose cancellation vetoes the change, or 0),
 * the description (empty, or the `task` field's JSON and the index in ARGV of the payload), the
 * status fields (field, value, ...), and optionally fields set whether or not the status moves,
 * unless the record has finished (the progress of a running attempt).
 * Returns, per change: applied (0/1), previous status or '', whether the record is described (0/1).
 */
const RECORD_SCRIPT = `
local ranks = { ${RANKS} }
local scheduled, claimed, cancelled = KEYS[1], KEYS[2], KEYS[3]
local ttl, cancelChannel, resultChannel, idFrom = ARGV[1], ARGV[3], ARGV[4], tonumber(ARGV[5]) + 1
local out = {}
for _, c in ipairs(cjson.decode(ARGV[2])) do
  local key, status, updatedAt, runAt, guard, describe, more = KEYS[c[1]], c[2], c[3], c[4], c[5], c[6], c[7]
  local id = string.sub(key, idFrom)
  if guard > 0 and redis.call('HGET', KEYS[guard], 'status') == 'cancelled' then
    out[#out + 1] = 0
    out[#out + 1] = 'cancelled'
    out[#out + 1] = 1
  else
    -- One read for the status and whether the record holds the description (its fields, task
    -- and payload, are always written together, so one stands for both).
    local found = redis.call('HMGET', key, 'status', 'task', 'waited')
    local previous, described = found[1], found[2] ~= false
    local fields = {}
    if not described and #describe > 0 then
      fields = { 'task', describe[1], 'payload', ARGV[describe[2]] }
    end
    local applied = 0
    if not previous or (ranks[previous] or 0) < ranks[status] then
      fields[#fields + 1] = 'status'
      fields[#fields + 1] = status
      fields[#fields + 1] = 'updatedAt'
      fields[#fields + 1] = updatedAt
      for j = 1, #more do
        fields[#fields + 1] = more[j]
      end
      applied = 1
      if status == 'scheduled' and runAt ~= '' then
        redis.call('ZADD', scheduled, runAt, id)
      elseif previous == 'scheduled' then
        redis.call('ZREM', scheduled, id)
        redis.call('ZREM', claimed, id)
      end
      if status == 'cancelled' then
        -- Workers mirror the cancelled set (loaded when they connect) and follow the channel, so
        -- that a delivery of a cancelled attempt is skipped without reading its record.
        local now = tonumber(updatedAt)
        redis.call('ZREMRANGEBYSCORE', cancelled, '-inf', now)
        redis.call('ZADD', cancelled, now + tonumber(ttl), id)
        redis.call('PEXPIRE', cancelled, ttl)
        redis.call('PUBLISH', cancelChannel, id)
      end
      if found[3] and ranks[status] == ranks['success'] then
        redis.call('PUBLISH', resultChannel, id)
      end
    end
    local always = c[8]
    if always and (applied == 1 or (ranks[previous] or 0) < ranks['success']) then
      for j = 1, #always do
        fields[#fields + 1] = always[j]
      end
    end
    if #fields > 0 then redis.call('HSET', key, unpack(fields)) end
    -- A scheduled attempt is kept until it is due, and the TTL after that.
    local keep = tonumber(ttl)
    if (applied == 1 and status or previous) == 'scheduled' then
      local due = (applied == 1 and tonumber(runAt)) or tonumber(redis.call('HGET', key, 'runAt'))
      if due then keep = math.max(keep, math.floor(due - tonumber(updatedAt) + keep)) end
    end
    redis.call('PEXPIRE', key, keep)
    out[#out + 1] = applied
    out[#out + 1] = previous or ''
    out[#out + 1] = (described or #describe > 0) and 1 or 0
  end
end
return out
`;

/** Most changes sent in one call. */
const MAX_BATCH = 500;

/** One change as the script reads it (see RECORD_SCRIPT); key indexes are set at flush. */
type ChangeArgs = [
  key: number,
  status: string,
  updatedAt: string,
  runAt: string,
  guard: number,
  describe: [task: string, payloadArg: number] | [],
  fields: string[],
  /** Set even when the status does not move (left out when there are none). */
  always?: string[],
];

/** A change waiting for the end of the tick, and who waits for its result. */
interface Pending {
  args: ChangeArgs;
  /** The task key of the change, and of its guard (or ''). */
  key: string;
  guard: string;
  /** The payload of a change that describes its attempt (its ARGV index is set at flush). */
  payload?: Buffer | string;
  resolve: (result: TaskStatusResult) => void;
  reject: (error: unknown) => void;
}

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

/**
 * What a worker reads of an attempt before running it, counting a redelivery in the same step.
 * KEYS: the task key. ARGV: 1 to count a redelivery (else 0), ttl (ms) for a record this creates.
 * Returns: status or '', described (0/1), redeliveries.
 */
const INSPECT_SCRIPT = `
local key, count = KEYS[1], ARGV[1] == '1'
local redeliveries = 0
if count then
  redeliveries = redis.call('HINCRBY', key, 'redeliveries', 1)
  if redeliveries == 1 and redis.call('PTTL', key) < 0 then redis.call('PEXPIRE', key, ARGV[2]) end
else
  redeliveries = tonumber(redis.call('HGET', key, 'redeliveries') or '0')
end
local found = redis.call('HMGET', key, 'status', 'task')
return { found[1] or '', found[2] and 1 or 0, redeliveries }
`;

type Command<T> = (...args: (string | number | Buffer)[]) => Promise<T>;

/**
 * The task log in Redis: one hash per attempt under `cogman:{<namespace>}:task:<id>`, and the
 * schedule of delayed attempts (`…:scheduled`, a sorted set by due time, with `…:claimed`).
 * Outside a Cluster, a record that is missing or undescribed is also looked for under its key of
 * 0.1 (`cogman:[<namespace>:]task:<id>`), for one release: see `LegacyRedisKeys`.
 */
@Injectable()
export class RedisTaskLogStore implements TaskLogStore {
  private readonly keys: RedisKeys;
  /** The keys of 0.1, read where their records may still be; null in a Cluster. */
  private readonly legacy: RedisKeys | null;
  private readonly recordScript: Command<(number | string)[]>;
  private batch: Pending[] = [];
  private readonly claimDueScript: Command<string[]>;
  private readonly claimOneScript: Command<number>;
  private readonly inspectScript: Command<[string, number, number]>;
  connections = 0;

  constructor(
    @Inject(COGMAN_REDIS) private readonly redis: CogmanRedis,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedCogmanOptions,
  ) {
    this.keys = redisKeys(options.namespace);
    this.legacy = isCluster(redis) ? null : legacyRedisKeys(options.namespace);
    this.recordScript = script(redis, 'cogmanRecordAll', undefined, RECORD_SCRIPT);
    this.claimDueScript = script(redis, 'cogmanClaimDue', 2, CLAIM_DUE_SCRIPT);
    this.claimOneScript = script(redis, 'cogmanClaimOne', 2, CLAIM_ONE_SCRIPT);
    this.inspectScript = script(redis, 'cogmanInspect', 1, INSPECT_SCRIPT);
    if (redis.status === 'ready') this.connections++;
    onReconnect(redis, () => this.connections++);
  }

  get available(): boolean {
    return this.redis.status === 'ready';
  }

  key(taskId: string): string {
    return this.keys.task(wellFormed(taskId));
  }

  record(change: TaskStatusChange): Promise<TaskStatusResult> {
    const described = change.task ? describeFields(change.task) : undefined;
    const fields: string[] = [];
    if (change.failError !== undefined) fields.push('failError', wellFormed(change.failError));
    if (change.duration !== undefined) fields.push('duration', String(change.duration));
    if (change.result !== undefined) {
      const binary = change.result.contentType === BINARY_CONTENT_TYPE;
      fields.push('result', change.result.body.toString(binary ? 'base64' : 'utf8'));
      if (binary) fields.push('resultBinary', '1');
    }
    if (change.resultError !== undefined) fields.push('resultError', change.resultError);
    if (change.retry !== undefined) fields.push('retry', String(change.retry));
    if (change.runAt !== undefined) fields.push('runAt', String(change.runAt.getTime()));
    if (change.startedAt !== undefined) {
      fields.push('startedAt', String(change.startedAt.getTime()));
    }
    const args: ChangeArgs = [
      0,
      change.status,
      String(change.at.getTime()),
      change.runAt ? String(change.runAt.getTime()) : '',
      0,
      described ? [described.task, 0] : [],
      fields,
    ];
    if (change.progress !== undefined) args.push(['progress', wellFormed(change.progress)]);
    const key = this.key(change.taskId);
    const guard = change.unlessCancelled ? this.key(change.unlessCancelled) : '';
    return new Promise((resolve, reject) => {
      if (this.batch.length === 0) process.nextTick(() => this.flush());
      this.batch.push({ args, key, guard, payload: described?.payload, resolve, reject });
      // Bounds how long one call keeps Redis busy.
      if (this.batch.length >= MAX_BATCH) this.flush();
    });
  }

  /** Sends the changes of this tick in one call, and hands each its result. */
  private flush(): void {
    if (this.batch.length === 0) return;
    const batch = this.batch;
    this.batch = [];
    const keys = [this.keys.scheduled, this.keys.claimed, this.keys.cancelled];
    /** Task key → its index in KEYS (1-based), each key declared once. */
    const indexes = new Map<string, number>();
    const indexOf = (key: string) => {
      let index = indexes.get(key);
      if (index === undefined) {
        index = keys.push(key);
        indexes.set(key, index);
      }
      return index;
    };
    const argv: (string | number | Buffer)[] = [
      this.options.redisTtl,
      '',
      this.keys.cancelChannel,
      this.keys.resultChannel,
      this.keys.task('').length,
    ];
    for (const { args, key, guard, payload } of batch) {
      args[0] = indexOf(key);
      if (guard) args[4] = indexOf(guard);
      if (payload === undefined) continue;
      argv.push(payload);
      args[5] = [args[5][0]!, argv.length];
    }
    argv[1] = JSON.stringify(batch.map((pending) => pending.args));
    this.recordScript(keys.length, ...keys, ...argv).then(
      (out) => {
        for (const [i, { resolve }] of batch.entries()) {
          const previous = out[3 * i + 1];
          resolve({
            applied: out[3 * i] === 1,
            previous: isTaskStatus(previous) ? previous : null,
            described: out[3 * i + 2] === 1,
          });
        }
      },
      (error: unknown) => {
        for (const { reject } of batch) reject(error);
      },
    );
  }

  async get(taskId: string): Promise<TaskRecord | null> {
    return (await this.load(taskId))?.record ?? null;
  }

  async load(taskId: string): Promise<StoredTask | null> {
    let hash = await this.redis.hgetall(this.key(taskId));
    if (this.legacy && !hash.task) {
      const legacy = await this.redis.hgetall(this.legacy.task(wellFormed(taskId)));
      hash = mergeLegacy(hash, legacy);
    }
    return isTaskStatus(hash.status) ? fromHash(taskId, hash) : null;
  }

  claimDue(now: Date, limit: number, leaseMs: number): Promise<string[]> {
    return this.claimDueScript(
      this.keys.scheduled,
      this.keys.claimed,
      now.getTime(),
      limit,
      leaseMs,
    );
  }

  async claim(taskId: string, now: Date, leaseMs: number): Promise<boolean> {
    const until = now.getTime() + leaseMs;
    return (await this.claimOneScript(this.keys.scheduled, this.keys.claimed, taskId, until)) === 1;
  }

  async release(taskId: string): Promise<void> {
    await this.redis.zrem(this.keys.claimed, taskId);
  }

  async inspect(taskId: string, { redelivered }: { redelivered: boolean }): Promise<AttemptState> {
    const [status, described, redeliveries] = await this.inspectScript(
      this.key(taskId),
      redelivered ? 1 : 0,
      this.options.redisTtl,
    );
    return {
      status: isTaskStatus(status) ? status : null,
      described: described === 1,
      redeliveries,
    };
  }
}

/**
 * A Lua script as an ioredis command (EVALSHA, falling back to EVAL). `keys` undefined: the call
 * gives the number of keys first.
 */
function script<T>(
  redis: CogmanRedis,
  name: string,
  keys: number | undefined,
  lua: string,
): Command<T> {
  if (!(name in redis)) redis.defineCommand(name, { numberOfKeys: keys, lua });
  return (redis as unknown as Record<string, Command<T>>)[name].bind(redis);
}

/**
 * A record read from its key and from its key of 0.1 (written by a process of 0.1 during an
 * upgrade, or before it): the further status wins, and the description comes from whichever
 * has it.
 */
function mergeLegacy(
  current: Record<string, string>,
  legacy: Record<string, string>,
): Record<string, string> {
  if (!isTaskStatus(legacy.status)) return current;
  if (!isTaskStatus(current.status)) return legacy;
  const [ahead, behind] =
    TASK_STATUS_RANK[legacy.status] > TASK_STATUS_RANK[current.status]
      ? [legacy, current]
      : [current, legacy];
  if (ahead.task || !behind.task) return ahead;
  return { ...ahead, task: behind.task, payload: behind.payload ?? '' };
}

/**
 * The text as Redis would store it, a lone UTF-16 surrogate replaced by U+FFFD. Redis's JSON
 * decoder refuses an escaped lone surrogate, which would fail every change of the call. (The
 * description is JSON itself, so its escapes arrive as text; a payload is decoded bytes.)
 */
function wellFormed(text: string): string {
  return /[\ud800-\udfff]/.test(text) ? Buffer.from(text, 'utf8').toString('utf8') : text;
}

/** The attempt as stored in the `task` field: one JSON value, defaults left out. */
interface StoredDescription {
  name: string;
  originalTaskId?: string;
  primaryKey?: string;
  attempt?: number;
  priority: TaskPriority;
  headers?: Record<string, string>;
  createdAt: number;
  retry?: number;
  timeout?: number;
  backoff?: TaskEnvelope['backoff'];
  /** The payload field holds base64 of binary bytes (else JSON text). */
  binary?: true;
}

/**
 * The descriptive fields of an attempt: `task` (one JSON value) and `payload` (JSON text, or
 * base64 of binary bytes), always written together, and only to a record that lacks them.
 */
export function describeFields(task: TaskEnvelope): { task: string; payload: Buffer | string } {
  const binary = task.payload.contentType === BINARY_CONTENT_TYPE;
  const description: StoredDescription = {
    name: task.name,
    priority: task.priority,
    createdAt: task.createdAt.getTime(),
  };
  if (task.originalTaskId !== task.taskId) description.originalTaskId = task.originalTaskId;
  if (task.primaryKey !== null) description.primaryKey = task.primaryKey;
  if (task.attempt !== 1) description.attempt = task.attempt;
  for (const _ in task.headers) {
    description.headers = task.headers;
    break;
  }
  if (task.retry !== undefined) description.retry = task.retry;
  if (task.timeout !== undefined) description.timeout = task.timeout;
  if (task.backoff !== undefined) description.backoff = task.backoff;
  if (binary) description.binary = true;
  return {
    task: JSON.stringify(description),
    payload: binary ? task.payload.body.toString('base64') : task.payload.body,
  };
}

function fromHash(taskId: string, hash: Record<string, string>): StoredTask {
  const stored = (hash.task ? JSON.parse(hash.task) : {}) as Partial<StoredDescription>;
  const payload: EncodedPayload = {
    contentType: stored.binary ? BINARY_CONTENT_TYPE : JSON_CONTENT_TYPE,
    body: Buffer.from(
      hash.payload ?? (stored.binary ? '' : 'null'),
      stored.binary ? 'base64' : 'utf8',
    ),
  };
  const number = (field: string) => (hash[field] === undefined ? undefined : Number(hash[field]));
  const updatedAt = new Date(Number(hash.updatedAt));
  const task: TaskEnvelope = {
    taskId,
    name: stored.name ?? '',
    originalTaskId: stored.originalTaskId ?? taskId,
    primaryKey: stored.primaryKey ?? null,
    attempt: stored.attempt ?? 1,
    priority: stored.priority ?? 'low',
    headers: stored.headers ?? {},
    createdAt: stored.createdAt === undefined ? updatedAt : new Date(stored.createdAt),
    payload,
  };
  if (stored.retry !== undefined) task.retry = stored.retry;
  if (stored.timeout !== undefined) task.timeout = stored.timeout;
  if (stored.backoff !== undefined) task.backoff = stored.backoff;
  const { payload: _payload, timeout: _timeout, backoff: _backoff, ...info } = task;
  const runAt = number('runAt');
  const startedAt = number('startedAt');
  return {
    task,
    record: {
      ...storedExtras(hash),
      ...info,
      retry: number('retry') ?? stored.retry ?? 0,
      payload: readPayload(payload),
      status: hash.status as TaskRecord['status'],
      failError: hash.failError ?? null,
      duration: number('duration') ?? null,
      startedAt: startedAt === undefined ? null : new Date(startedAt),
      runAt: runAt === undefined ? null : new Date(runAt),
      updatedAt,
    },
  };
}

/** The result, its note and the progress of a record, where it has them. */
function storedExtras(
  hash: Record<string, string>,
): Pick<TaskRecord, 'result' | 'resultError' | 'progress'> {
  const extras: Pick<TaskRecord, 'result' | 'resultError' | 'progress'> = {};
  if (hash.result !== undefined) {
    extras.result = readResult(
      hash.resultBinary === '1'
        ? { contentType: BINARY_CONTENT_TYPE, body: Buffer.from(hash.result, 'base64') }
        : { contentType: JSON_CONTENT_TYPE, body: Buffer.from(hash.result) },
    );
  }
  if (hash.resultError !== undefined) extras.resultError = hash.resultError;
  if (hash.progress !== undefined) extras.progress = readProgress(hash.progress);
  return extras;
}

function readProgress(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The payload as sent; bytes that were meant as JSON but do not parse come back as bytes. */
function readPayload(payload: EncodedPayload): unknown {
  try {
    return decodePayload(payload);
  } catch {
    return payload.body;
  }
}
