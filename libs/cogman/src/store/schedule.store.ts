import { Inject, Injectable } from '@nestjs/common';
import { RESOLVED_OPTIONS, type ResolvedCogmanOptions } from '../config';
import { StoreUnavailableError } from '../errors';
import type { TaskScheduleDefinition } from '../task';
import { within } from '../util/within';
import { COGMAN_REDIS, type CogmanRedis } from './redis-connection';
import { redisKeys, type RedisKeys } from './redis-keys';

/** Who declared a schedule: the application's code (reconciled at boot) or a call at run time. */
export type ScheduleSource = 'code' | 'api';

/** A schedule as stored, with its state. */
export interface StoredSchedule {
  definition: TaskScheduleDefinition;
  source: ScheduleSource;
  paused: boolean;
  /** The next tick (ms); for a paused schedule, the one it had when paused. */
  nextRun: number | null;
  /** The last tick that sent a task, and that task's id. */
  lastTick: number | null;
  lastTaskId: string | null;
  updatedAt: number;
}

/** A schedule a scheduler has claimed: its tick is its own until it commits or its lease lapses. */
export interface ClaimedTick {
  id: string;
  definition: TaskScheduleDefinition;
  tick: number;
}

/**
 * Upserts a schedule. KEYS: ids, the schedule's hash, due, claimed. ARGV: id, definition, source,
 * next run (ms), now (ms). An unchanged definition keeps its state (next run, pause); a changed
 * one gets the new next run (and any claim of a scheduler's is voided). Returns 1 if it changed.
 */
const UPSERT_SCRIPT = `
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('HGET', KEYS[2], 'definition') == ARGV[2] then
  redis.call('HSET', KEYS[2], 'source', ARGV[3])
  return 0
end
redis.call('HSET', KEYS[2], 'definition', ARGV[2], 'source', ARGV[3], 'nextRun', ARGV[4], 'updatedAt', ARGV[5])
redis.call('HDEL', KEYS[2], 'claim')
redis.call('ZREM', KEYS[4], ARGV[1])
if redis.call('HGET', KEYS[2], 'paused') ~= '1' then redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1]) end
return 1
`;

/** Removes a schedule. KEYS: ids, hash, due, claimed. ARGV: id. Returns 1 if it existed. */
const REMOVE_SCRIPT = `
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('DEL', KEYS[2])
return redis.call('SREM', KEYS[1], ARGV[1])
`;

/**
 * Pauses (ARGV[2] = '1') or resumes (ARGV[2] = '0', ARGV[3] = the next run) a schedule.
 * KEYS: hash, due, claimed. ARGV: id. Returns 0 for an unknown schedule.
 */
const PAUSE_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[2] == '1' then
  redis.call('HSET', KEYS[1], 'paused', '1')
  redis.call('HDEL', KEYS[1], 'claim')
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
elseif redis.call('HGET', KEYS[1], 'paused') == '1' then
  redis.call('HDEL', KEYS[1], 'paused')
  redis.call('HSET', KEYS[1], 'nextRun', ARGV[3])
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
end
return 1
`;

/**
 * Claims the schedules whose tick is due, each for a lease, with a token: one scheduler at a time
 * handles a tick. Claims whose lease lapsed (their scheduler died) are due again first, at the
 * tick they had. The candidates are read before (lapsed claims, then due ticks) and checked again
 * here, in one step. KEYS: due, claimed, then each candidate's hash. ARGV: now, limit, lease (ms),
 * token, then the candidates' ids (in the order of their hashes). Returns id, definition, tick for
 * each.
 */
const CLAIM_SCRIPT = `
local now, limit, lease, token = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
for i = 5, #ARGV do
  local id, hash = ARGV[i], KEYS[i - 2]
  local leased = redis.call('ZSCORE', KEYS[2], id)
  if leased and tonumber(leased) <= now then
    redis.call('ZREM', KEYS[2], id)
    local tick = redis.call('HGET', hash, 'nextRun')
    if tick and redis.call('HGET', hash, 'paused') ~= '1' then
      redis.call('HDEL', hash, 'claim')
      redis.call('ZADD', KEYS[1], tick, id)
    end
  end
end
local out = {}
for i = 5, #ARGV do
  if #out >= 3 * limit then break end
  local id, hash = ARGV[i], KEYS[i - 2]
  local tick = redis.call('ZSCORE', KEYS[1], id)
  if tick and tonumber(tick) <= now then
    redis.call('ZREM', KEYS[1], id)
    local definition = redis.call('HGET', hash, 'definition')
    if definition then
      redis.call('ZADD', KEYS[2], now + lease, id)
      redis.call('HSET', hash, 'claim', token)
      out[#out + 1] = id
      out[#out + 1] = definition
      out[#out + 1] = tick
    end
  end
end
return out
`;

/**
 * Ends a claim: the next tick goes on the schedule, and the task sent (if any) is noted. Does
 * nothing if the claim is no longer this one's (the schedule was replaced, paused or removed).
 * KEYS: hash, due, claimed. ARGV: id, token, next run, last tick or '', last task id or ''.
 */
const COMMIT_SCRIPT = `
if redis.call('HGET', KEYS[1], 'claim') ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], 'claim')
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[1], 'nextRun', ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'lastTick', ARGV[4], 'lastTaskId', ARGV[5]) end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1
`;

type Command<T> = (...args: (string | number)[]) => Promise<T>;

/** Where schedules are kept: Redis (`ScheduleStore`), or memory in the testing kit. */
export interface ScheduleStorage {
  /** Whether the store is connected now. */
  readonly available: boolean;
  /** Creates or replaces a schedule; true if it changed (false: the same definition). */
  upsert(
    definition: TaskScheduleDefinition,
    source: ScheduleSource,
    nextRun: number,
    now: number,
  ): Promise<boolean>;
  remove(id: string): Promise<boolean>;
  pause(id: string): Promise<boolean>;
  resume(id: string, nextRun: number): Promise<boolean>;
  get(id: string): Promise<StoredSchedule | null>;
  list(): Promise<StoredSchedule[]>;
  /** Claims the schedules whose tick is due (see CLAIM_SCRIPT). */
  claim(now: number, limit: number, lease: number, token: string): Promise<ClaimedTick[]>;
  /** Ends a claim with the next tick (see COMMIT_SCRIPT); false if the claim was voided. */
  commit(
    id: string,
    token: string,
    nextRun: number,
    sent: { tick: number; taskId: string } | null,
  ): Promise<boolean>;
}

export const SCHEDULE_STORE = Symbol('cogman:schedule-store');

/**
 * Recurring tasks' schedules in Redis: a set of ids (`…:schedules`), a hash per schedule
 * (`…:schedule:<id>`: definition, source, pause, next run, last run), and the ticks due
 * (`…:schedules:due`, by time) with the claims of the schedulers handling them
 * (`…:schedules:claimed`, by the end of their lease).
 */
@Injectable()
export class ScheduleStore implements ScheduleStorage {
  private readonly keys: RedisKeys;
  private readonly upsertScript: Command<number>;
  private readonly removeScript: Command<number>;
  private readonly pauseScript: Command<number>;
  private readonly claimScript: Command<string[]>;
  private readonly commitScript: Command<number>;

  constructor(
    @Inject(COGMAN_REDIS) private readonly redis: CogmanRedis,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedCogmanOptions,
  ) {
    this.keys = redisKeys(options.namespace);
    this.upsertScript = script(redis, 'cogmanScheduleUpsert', 4, UPSERT_SCRIPT);
    this.removeScript = script(redis, 'cogmanScheduleRemove', 4, REMOVE_SCRIPT);
    this.pauseScript = script(redis, 'cogmanSchedulePause', 3, PAUSE_SCRIPT);
    this.claimScript = script(redis, 'cogmanScheduleClaim', undefined, CLAIM_SCRIPT);
    this.commitScript = script(redis, 'cogmanScheduleCommit', 3, COMMIT_SCRIPT);
  }

  get available(): boolean {
    return this.redis.status === 'ready';
  }

  /** Creates or replaces a schedule; true if it changed (false: the same definition). */
  async upsert(
    definition: TaskScheduleDefinition,
    source: ScheduleSource,
    nextRun: number,
    now: number,
  ): Promise<boolean> {
    const { id } = definition;
    const changed = await this.read(
      this.upsertScript(
        ...this.scheduleKeys(id),
        id,
        JSON.stringify(definition),
        source,
        nextRun,
        now,
      ),
    );
    return changed === 1;
  }

  async remove(id: string): Promise<boolean> {
    return (await this.read(this.removeScript(...this.scheduleKeys(id), id))) === 1;
  }

  /** Pauses a schedule (no tick sends a task until resumed); false for an unknown one. */
  async pause(id: string): Promise<boolean> {
    const k = this.keys;
    return (
      (await this.read(
        this.pauseScript(k.schedule(id), k.schedulesDue, k.schedulesClaimed, id, '1', ''),
      )) === 1
    );
  }

  /** Resumes a paused schedule from `nextRun`; false for an unknown one. */
  async resume(id: string, nextRun: number): Promise<boolean> {
    const k = this.keys;
    return (
      (await this.read(
        this.pauseScript(k.schedule(id), k.schedulesDue, k.schedulesClaimed, id, '0', nextRun),
      )) === 1
    );
  }

  async get(id: string): Promise<StoredSchedule | null> {
    const hash = await this.read(this.redis.hgetall(this.keys.schedule(id)));
    return fromHash(hash);
  }

  /** Every schedule of the namespace, by id. */
  async list(): Promise<StoredSchedule[]> {
    const reading = (async () => {
      const ids = (await this.redis.smembers(this.keys.schedules)).sort();
      const hashes = await Promise.all(ids.map((id) => this.redis.hgetall(this.keys.schedule(id))));
      return hashes.flatMap((hash) => {
        const schedule = fromHash(hash);
        return schedule ? [schedule] : [];
      });
    })();
    return this.read(reading);
  }

  async claim(now: number, limit: number, lease: number, token: string): Promise<ClaimedTick[]> {
    const k = this.keys;
    const [lapsed, due] = await Promise.all([
      this.redis.zrangebyscore(k.schedulesClaimed, '-inf', now, 'LIMIT', 0, limit),
      this.redis.zrangebyscore(k.schedulesDue, '-inf', now, 'LIMIT', 0, limit),
    ]);
    const ids = [...new Set([...lapsed, ...due])];
    if (ids.length === 0) return [];
    const out = await this.claimScript(
      2 + ids.length,
      k.schedulesDue,
      k.schedulesClaimed,
      ...ids.map((id) => k.schedule(id)),
      now,
      limit,
      lease,
      token,
      ...ids,
    );
    const claimed: ClaimedTick[] = [];
    for (let i = 0; i < out.length; i += 3) {
      claimed.push({
        id: out[i],
        definition: JSON.parse(out[i + 1]) as TaskScheduleDefinition,
        tick: Number(out[i + 2]),
      });
    }
    return claimed;
  }

  async commit(
    id: string,
    token: string,
    nextRun: number,
    sent: { tick: number; taskId: string } | null,
  ): Promise<boolean> {
    const k = this.keys;
    const done = await this.commitScript(
      k.schedule(id),
      k.schedulesDue,
      k.schedulesClaimed,
      id,
      token,
      nextRun,
      sent ? sent.tick : '',
      sent ? sent.taskId : '',
    );
    return done === 1;
  }

  private scheduleKeys(id: string): [string, string, string, string] {
    const k = this.keys;
    return [k.schedules, k.schedule(id), k.schedulesDue, k.schedulesClaimed];
  }

  private read<T>(reading: Promise<T>): Promise<T> {
    const timeout = this.options.requestTimeout;
    return within(reading, timeout, () => {
      reading.catch(() => {});
      throw new StoreUnavailableError('a schedule', timeout);
    });
  }
}

function fromHash(hash: Record<string, string>): StoredSchedule | null {
  if (!hash.definition) return null;
  const number = (field: string) => (hash[field] === undefined ? null : Number(hash[field]));
  return {
    definition: JSON.parse(hash.definition) as TaskScheduleDefinition,
    source: hash.source === 'code' ? 'code' : 'api',
    paused: hash.paused === '1',
    nextRun: number('nextRun'),
    lastTick: number('lastTick'),
    lastTaskId: hash.lastTaskId ?? null,
    updatedAt: number('updatedAt') ?? 0,
  };
}

/** A Lua script as an ioredis command; `keys` undefined: the call gives the number of keys first. */
function script<T>(
  redis: CogmanRedis,
  name: string,
  keys: number | undefined,
  lua: string,
): Command<T> {
  if (!(name in redis)) redis.defineCommand(name, { numberOfKeys: keys, lua });
  return (redis as unknown as Record<string, Command<T>>)[name].bind(redis);
}
