import { Inject, Injectable, Optional } from '@nestjs/common';
import { RESOLVED_OPTIONS, type ResolvedCogmanOptions } from '../config';
import { StoreUnavailableError } from '../errors';
import { COGMAN_CLOCK, SYSTEM_CLOCK, type Clock } from '../util/clock';
import { within } from '../util/within';
import { COGMAN_REDIS, type CogmanRedis } from './redis-connection';
import { redisKeys, type RedisKeys } from './redis-keys';

/** Deletes a unique key only if the given task still holds it. KEYS: the key. ARGV: task id. */
const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

type ReleaseCommand = (key: string, taskId: string) => Promise<number>;

/**
 * The unique keys of a namespace (`cogman:{<namespace>}:unique:<key>` → the original id of the
 * task holding it). Taking a key is one `SET NX`: of concurrent senders of one key, in any
 * number of processes, exactly one gets it. In the testing kit (no Redis), a map.
 */
@Injectable()
export class UniqueKeyStore {
  private readonly keys: RedisKeys;
  private readonly memory = new Map<string, { taskId: string; until: number }>();
  private readonly releaseScript?: ReleaseCommand;

  constructor(
    @Optional() @Inject(COGMAN_REDIS) private readonly redis: CogmanRedis | null,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedCogmanOptions,
    @Optional() @Inject(COGMAN_CLOCK) private readonly clock: Clock = SYSTEM_CLOCK,
  ) {
    this.keys = redisKeys(options.namespace);
    if (redis) {
      if (!('cogmanReleaseUnique' in redis)) {
        redis.defineCommand('cogmanReleaseUnique', { numberOfKeys: 1, lua: RELEASE_SCRIPT });
      }
      const commands = redis as unknown as Record<string, ReleaseCommand>;
      this.releaseScript = commands.cogmanReleaseUnique.bind(redis);
    }
  }

  /** Takes the key for `taskId` for `ttl` ms; false when another task holds it. */
  async take(key: string, taskId: string, ttl: number): Promise<boolean> {
    if (!this.redis) {
      const held = this.holderInMemory(key);
      if (held !== null) return false;
      this.memory.set(key, { taskId, until: this.clock.now() + ttl });
      return true;
    }
    const taken = await this.read(this.redis.set(this.keys.unique(key), taskId, 'PX', ttl, 'NX'));
    return taken === 'OK';
  }

  /** The original id of the task holding the key, or null when it is free. */
  async holder(key: string): Promise<string | null> {
    if (!this.redis) return this.holderInMemory(key);
    return this.read(this.redis.get(this.keys.unique(key)));
  }

  /** Frees the key if `taskId` still holds it. */
  async release(key: string, taskId: string): Promise<void> {
    if (!this.redis) {
      if (this.memory.get(key)?.taskId === taskId) this.memory.delete(key);
      return;
    }
    await this.read(this.releaseScript!(this.keys.unique(key), taskId));
  }

  private holderInMemory(key: string): string | null {
    const held = this.memory.get(key);
    if (!held) return null;
    if (held.until > this.clock.now()) return held.taskId;
    this.memory.delete(key);
    return null;
  }

  private read<T>(reading: Promise<T>): Promise<T> {
    const timeout = this.options.requestTimeout;
    return within(reading, timeout, () => {
      reading.catch(() => {});
      throw new StoreUnavailableError('a unique key', timeout);
    });
  }
}
