import { Inject, Injectable, Logger } from '@nestjs/common';
import { RESOLVED_OPTIONS, type ResolvedCogmanOptions } from '../config';
import { COGMAN_REDIS, isCluster, type CogmanRedis } from './redis-connection';
import { legacyRedisKeys, redisKeys, type RedisKeys } from './redis-keys';

/** How often the keys of 0.1 are looked at again (processes of 0.1 may still write them). */
export const LEGACY_SWEEP_INTERVAL = 60_000;
/** Entries moved per call. */
const CHUNK = 200;

/**
 * Moves entries of 0.1's schedule, claims and cancelled set to their keys of today, each with its
 * record. KEYS: old schedule, old claims, old cancelled set, new schedule, new claims, new
 * cancelled set, then for each id of ARGV its old task key and its new one. ARGV: the cancellation
 * channel, then the ids. A record moves (RENAME keeps its TTL) unless the new key has one; an
 * entry keeps its score (due time, lease, lapse); each cancellation moved is published, so that
 * workers mirroring the cancelled set learn of it. Returns how many entries moved.
 */
const MOVE_SCRIPT = `
local moved = 0
local keep = redis.call('PTTL', KEYS[3])
for i = 2, #ARGV do
  local id, old, new = ARGV[i], KEYS[5 + 2 * (i - 1)], KEYS[6 + 2 * (i - 1)]
  if redis.call('EXISTS', old) == 1 and redis.call('EXISTS', new) == 0 then
    redis.call('RENAME', old, new)
  end
  for set = 1, 3 do
    local score = redis.call('ZSCORE', KEYS[set], id)
    if score then
      redis.call('ZADD', KEYS[set + 3], set == 3 and 'GT' or 'NX', score, id)
      redis.call('ZREM', KEYS[set], id)
      if set == 3 then redis.call('PUBLISH', ARGV[1], id) end
      moved = moved + 1
    end
  end
end
if keep > redis.call('PTTL', KEYS[6]) then redis.call('PEXPIRE', KEYS[6], keep) end
return moved
`;

/**
 * The keys of 0.1 (before the hash tag, `cogman:[<namespace>:]…`), for one release. What decides
 * a task's future moves: the entries of the schedule and its claims (delayed tasks, backoff
 * retries) and of the cancelled set, each with its record, at start and every minute after (a
 * process of 0.1 may still be writing them during a rolling upgrade). Other records stay where
 * they are, are read there (`RedisTaskLogStore.load`) and expire with their TTL. Not in a Cluster:
 * 0.1 could not run on one, and its keys would cross slots.
 */
@Injectable()
export class LegacyRedisKeys {
  private readonly logger = new Logger('Cogman:Redis');
  private readonly keys: RedisKeys;
  private readonly legacy: RedisKeys;
  private timer?: NodeJS.Timeout;
  private moving?: Promise<number>;

  constructor(
    @Inject(COGMAN_REDIS) private readonly redis: CogmanRedis,
    @Inject(RESOLVED_OPTIONS) options: ResolvedCogmanOptions,
  ) {
    this.keys = redisKeys(options.namespace);
    this.legacy = legacyRedisKeys(options.namespace);
  }

  /** Moves what there is now, then every `LEGACY_SWEEP_INTERVAL`, until `stop`. */
  start(): void {
    if (this.timer || isCluster(this.redis)) return;
    this.timer = setInterval(() => void this.move(), LEGACY_SWEEP_INTERVAL);
    this.timer.unref();
    void this.move();
  }

  /**
   * Stops the sweeps. One under way is not waited for: it may be waiting for Redis, and what it
   * has not moved is moved at the next start (each entry moves in one step, with its record).
   */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Moves every entry there is now; resolves with how many moved (0 if Redis failed). */
  move(): Promise<number> {
    if (isCluster(this.redis)) return Promise.resolve(0);
    this.moving ??= this.moveAll()
      .then((moved) => {
        if (moved > 0) {
          this.logger.log(
            `Moved ${moved} scheduled, claimed or cancelled task(s) from the keys of Cogman 0.1 (${this.legacy.prefix}…) to ${this.keys.prefix}…`,
          );
        }
        return moved;
      })
      .catch((error: unknown) => {
        this.logger.warn(`Could not look at the keys of Cogman 0.1: ${String(error)}`);
        return 0;
      })
      .finally(() => (this.moving = undefined));
    return this.moving;
  }

  private async moveAll(): Promise<number> {
    const { legacy, keys } = this;
    let moved = 0;
    for (;;) {
      const found = await Promise.all(
        [legacy.scheduled, legacy.claimed, legacy.cancelled].map((set) =>
          this.redis.zrange(set, 0, CHUNK - 1),
        ),
      );
      const ids = [...new Set(found.flat())];
      if (ids.length === 0) return moved;
      const sets = [legacy.scheduled, legacy.claimed, legacy.cancelled];
      const tasks = ids.flatMap((id) => [legacy.task(id), keys.task(id)]);
      const count = 6 + tasks.length;
      const now = (await this.redis.eval(
        MOVE_SCRIPT,
        count,
        ...sets,
        keys.scheduled,
        keys.claimed,
        keys.cancelled,
        ...tasks,
        keys.cancelChannel,
        ...ids,
      )) as number;
      moved += now;
      // Nothing moved from a non-empty set would loop for ever.
      if (now === 0) return moved;
    }
  }
}
