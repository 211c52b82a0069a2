import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { RESOLVED_OPTIONS, type ResolvedCogmanOptions } from '../config';
import type { TaskEnvelope } from '../task';
import { COGMAN_REDIS, scanKeys, type CogmanRedis } from './redis-connection';
import { redisKeys, type RedisKeys } from './redis-keys';
import { describeFields } from './redis-task-log.store';

/**
 * Lets an attempt start under its task name's rate limit, or gives it its turn. KEYS: the limiter.
 * ARGV: max, duration (ms), attempt id. Times are Redis's own clock, shared by every worker.
 * Entries at or before now are starts, kept while in the window; entries after now are turns
 * given to attempts over the limit (one each, in order, so that each attempt waits once).
 * An attempt starts now when the starts of the last `duration` ms are fewer than `max` and no
 * turn is due before it (one whose turn has come goes first); otherwise it gets the earliest turn
 * after all the others at which every window of `duration` holds at most `max` entries.
 * Returns the ms to wait (0: start now).
 */
const RESERVE_SCRIPT = `
local key, max, duration, member = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - duration)
local mine = redis.call('ZSCORE', key, member)
if mine and tonumber(mine) > now then return tonumber(mine) - now end
if mine then redis.call('ZREM', key, member) end
local waiting = redis.call('ZCOUNT', key, '(' .. now, '+inf')
if (mine or waiting == 0) and redis.call('ZCOUNT', key, '-inf', now) < max then
  redis.call('ZADD', key, now, member)
  local top = tonumber(redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2])
  redis.call('PEXPIRE', key, top - now + duration + 1000)
  return 0
end
local count = redis.call('ZCARD', key)
local at = now + 1
local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
if last[2] and tonumber(last[2]) > at then at = tonumber(last[2]) end
if count >= max then
  local edge = redis.call('ZRANGE', key, count - max, count - max, 'WITHSCORES')
  if tonumber(edge[2]) + duration > at then at = tonumber(edge[2]) + duration end
end
redis.call('ZADD', key, at, member)
redis.call('PEXPIRE', key, at - now + duration + 1000)
return at - now
`;

/**
 * Puts a queued attempt back on the schedule (its turn under a rate limit comes later): its
 * record goes `scheduled` with `runAt`, the one change that moves a status back, and only from
 * `queued` or `in_progress`. A record with no status yet (its producer's `queued` has not landed)
 * is left alone: that write would take the attempt off the schedule; so is one a scheduler has
 * just published (`scheduled`, off the schedule), whose `queued` is on its way. KEYS: the task's key, the
 * schedule. ARGV: id, runAt (ms), now (ms), ttl (ms), the description JSON and payload for a
 * record that lacks them (or ''). Returns '' when deferred, else the status found ('none').
 */
const DEFER_SCRIPT = `
local status = redis.call('HGET', KEYS[1], 'status')
local foreign = ARGV[5] ~= ''
if not status and not foreign then return 'none' end
-- Published by a scheduler, its queued not recorded yet: that write takes it off the schedule.
if status == 'scheduled' and not redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 'none' end
if status and status ~= 'queued' and status ~= 'in_progress' then return status end
if foreign and redis.call('HEXISTS', KEYS[1], 'task') == 0 then
  redis.call('HSET', KEYS[1], 'task', ARGV[5], 'payload', ARGV[6])
end
redis.call('HSET', KEYS[1], 'status', 'scheduled', 'runAt', ARGV[2], 'updatedAt', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
local keep = math.max(tonumber(ARGV[4]), tonumber(ARGV[2]) - tonumber(ARGV[3]) + tonumber(ARGV[4]))
redis.call('PEXPIRE', KEYS[1], keep)
return ''
`;

/**
 * Takes (or renews) a lease on a slot of a group. KEYS: the group's leases. ARGV: slots, lease
 * (ms), attempt id. Lapsed leases (their worker died) are dropped first. Returns 1 if the attempt
 * holds a slot until now + lease, else 0.
 */
const LEASE_SCRIPT = `
local key, slots, lease, member = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
if not redis.call('ZSCORE', key, member) and redis.call('ZCARD', key) >= slots then return 0 end
redis.call('ZADD', key, now + lease, member)
redis.call('PEXPIRE', key, 2 * lease)
return 1
`;

/** Starts in the window, and turns given for later. KEYS: the limiter. ARGV: duration (ms). */
const RATE_STATE_SCRIPT = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
return {
  redis.call('ZCOUNT', KEYS[1], '(' .. (now - tonumber(ARGV[1])), now),
  redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf'),
}
`;

/** A key as a SCAN pattern that matches only it (and what follows a trailing `*`). */
function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

/** How long a group slot's lease holds without renewal: a dead worker's slot is back after it. */
export const GROUP_LEASE = 10_000;
/** How often a running attempt renews its lease. */
const GROUP_RENEWAL = GROUP_LEASE / 4;

/** A group slot held by a running attempt; `release` once its handler is over. */
export interface GroupSlot {
  release(): void;
}

const NO_SLOT: GroupSlot = { release: () => {} };

/**
 * What became of a deferral: scheduled; not recorded yet (hand the message back); or left as it
 * was (finished, cancelled, or on the schedule already).
 */
export type DeferResult = 'deferred' | 'unrecorded' | 'unchanged';

/**
 * Limits shared by every worker of a namespace, in Redis: the rate limit of a task name (a
 * sliding window of starts, with reservations for the attempts over it) and the concurrency of
 * a group (leases on its slots). Only handlers that set a limit use it; every other task costs
 * nothing here.
 */
@Injectable()
export class TaskLimits {
  private readonly logger = new Logger('Cogman:Worker');
  private readonly keys: RedisKeys;
  private warned = false;

  constructor(
    /** Null in the testing kit: limits do not apply there. */
    @Optional() @Inject(COGMAN_REDIS) private readonly redis: CogmanRedis | null,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedCogmanOptions,
  ) {
    this.keys = redisKeys(options.namespace);
  }

  /**
   * Reserves a start of `task` under its name's rate limit: ms to wait for its turn (0: start
   * now). When Redis cannot answer, 0: a limit never stops tasks through an outage.
   */
  async reserve(task: TaskEnvelope, limit: { max: number; duration: number }): Promise<number> {
    if (!this.redis) return 0;
    if (this.redis.status !== 'ready') return this.unlimited('Redis is unreachable');
    try {
      const wait = (await this.redis.eval(
        RESERVE_SCRIPT,
        1,
        this.keys.rateLimit(task.name),
        limit.max,
        limit.duration,
        task.taskId,
      )) as number;
      return Math.max(0, Number(wait));
    } catch (error) {
      return this.unlimited(String(error));
    }
  }

  /** Schedules `task` again at `runAt` (see DEFER_SCRIPT); `foreign`: no producer records it. */
  async defer(task: TaskEnvelope, runAt: Date, foreign: boolean): Promise<DeferResult> {
    const described = foreign ? describeFields(task) : undefined;
    const found = (await this.redis!.eval(
      DEFER_SCRIPT,
      2,
      this.keys.task(task.taskId),
      this.keys.scheduled,
      task.taskId,
      runAt.getTime(),
      Date.now(),
      this.options.redisTtl,
      described?.task ?? '',
      described?.payload ?? '',
    )) as string;
    if (found === '') return 'deferred';
    return found === 'none' ? 'unrecorded' : 'unchanged';
  }

  /**
   * A slot of `task`'s group (at most `slots` running at once), or null when they are all taken.
   * When Redis cannot answer, a slot that limits nothing: a limit never stops tasks through an
   * outage.
   */
  async groupSlot(task: TaskEnvelope, group: string, slots: number): Promise<GroupSlot | null> {
    if (!this.redis) return NO_SLOT;
    const redis = this.redis;
    if (redis.status !== 'ready') {
      this.unlimited('Redis is unreachable');
      return NO_SLOT;
    }
    const key = this.keys.groupLeases(task.name, group);
    const lease = () =>
      redis.eval(LEASE_SCRIPT, 1, key, slots, GROUP_LEASE, task.taskId) as Promise<number>;
    try {
      if ((await lease()) !== 1) return null;
    } catch (error) {
      this.unlimited(String(error));
      return NO_SLOT;
    }
    const renewal = setInterval(() => void lease().catch(() => {}), GROUP_RENEWAL);
    renewal.unref();
    return {
      release: () => {
        clearInterval(renewal);
        redis.zrem(key, task.taskId).catch(() => {});
      },
    };
  }

  /**
   * A rate limiter as Redis holds it now: starts within the last `duration` ms, and attempts
   * given a later turn. Null without Redis.
   */
  async rateState(
    name: string,
    duration: number,
  ): Promise<{ started: number; waiting: number } | null> {
    if (!this.redis) return null;
    const [started, waiting] = (await this.redis.eval(
      RATE_STATE_SCRIPT,
      1,
      this.keys.rateLimit(name),
      duration,
    )) as [number, number];
    return { started, waiting };
  }

  /** The groups of a task name that have tasks running now, with how many each. */
  async groupStates(name: string): Promise<{ group: string; running: number }[]> {
    if (!this.redis) return [];
    const prefix = this.keys.groupLeases(name, '');
    const keys = await scanKeys(this.redis, `${globEscape(prefix)}*`);
    const now = Date.now();
    const states = await Promise.all(
      [...keys].map(async (key) => ({
        group: key.slice(prefix.length),
        running: await this.redis!.zcount(key, `(${now}`, '+inf'),
      })),
    );
    return states
      .filter((state) => state.running > 0)
      .sort((a, b) => a.group.localeCompare(b.group));
  }

  private unlimited(reason: string): number {
    if (!this.warned) {
      this.warned = true;
      this.logger.warn(`Rate limits cannot be checked (${reason}): tasks start without them`);
    }
    return 0;
  }
}
