import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { RESOLVED_OPTIONS, type ResolvedCogmanOptions } from '../config';
import { TaskCancelledError } from '../errors';
import {
  COGMAN_REDIS,
  openSubscriber,
  type CogmanRedis,
  type RedisSubscriber,
} from '../store/redis-connection';
import { redisKeys, type RedisKeys } from '../store/redis-keys';
import { within } from '../util/within';
import type { TaskAbort } from './task-abort';

/**
 * Most cancelled attempts a worker mirrors (about 100 bytes each). Past it, the mirror stops
 * vouching: deliveries are checked against their record until it is back under the bound.
 */
export const CANCELLED_MIRROR_LIMIT = 100_000;
/** How often lapsed entries leave the mirror. */
const SWEEP_INTERVAL = 60_000;

/**
 * Cancellations, as a worker sees them. Cancelling an attempt (the task log's script) puts it in
 * the namespace's cancelled set, until its record's TTL has passed, and publishes it on the
 * namespace's channel. Each worker process mirrors that set in memory: it subscribes to the
 * channel, then loads the set (at start and after every reconnection of its subscriber), so a
 * delivery of a cancelled attempt is skipped without a read of its record, and the handler of a
 * running one is aborted, whatever status its record shows.
 *
 * The mirror vouches for a delivery only while it is in step with Redis (its subscription is up
 * and the set loaded since) and under `CANCELLED_MIRROR_LIMIT` entries; otherwise `isCancelled`
 * answers undefined and the worker reads the record instead.
 */
@Injectable()
export class TaskCancellation {
  private readonly logger = new Logger('Cogman:Worker');
  private readonly running = new Map<string, TaskAbort>();
  /** Cancelled attempt id → when its entry lapses (ms). */
  private readonly mirror = new Map<string, number>();
  private readonly keys: RedisKeys;
  private readonly ttl: number;
  private subscriber?: RedisSubscriber;
  private sweeper?: NodeJS.Timeout;
  /** In step with Redis: subscribed, and the set loaded since. Without Redis, always. */
  private synced: boolean;

  constructor(
    /** Null in the testing kit: cancellations stay in this process. */
    @Optional() @Inject(COGMAN_REDIS) private readonly redis: CogmanRedis | null,
    @Inject(RESOLVED_OPTIONS) options: ResolvedCogmanOptions,
  ) {
    this.keys = redisKeys(options.namespace);
    this.ttl = options.redisTtl;
    this.synced = redis === null;
  }

  /**
   * Follows cancellations (worker processes only): resolves once the mirror is first in step
   * with Redis, or after `wait` ms (then deliveries are checked against their record until it
   * is). The subscription is made again, and the set loaded again, after each reconnection.
   */
  async listen(wait: number): Promise<void> {
    if (this.subscriber || !this.redis) return;
    const subscriber = openSubscriber(this.redis, 'cogman-cancel');
    this.subscriber = subscriber;
    subscriber.on('message', (_channel, taskId) => {
      this.note(taskId, Date.now() + this.ttl);
    });
    subscriber.on('error', () => {});
    subscriber.on('close', () => (this.synced = false));
    // The first subscribe connects it; after a reconnection, it subscribes and loads again.
    subscriber.on('ready', () => void this.sync(subscriber));
    this.sweeper = setInterval(() => this.sweep(), SWEEP_INTERVAL);
    this.sweeper.unref();
    await within(this.sync(subscriber), wait, () => undefined);
  }

  /**
   * Whether the attempt was cancelled: true or false when the mirror can tell, undefined when it
   * cannot vouch now (then read the record).
   */
  isCancelled(taskId: string): boolean | undefined {
    const until = this.mirror.get(taskId);
    if (until !== undefined && until > Date.now()) return true;
    return this.synced && this.mirror.size <= CANCELLED_MIRROR_LIMIT ? false : undefined;
  }

  /** Registers a running attempt; call the returned function when it is over. */
  track(taskId: string, abort: TaskAbort): () => void {
    this.running.set(taskId, abort);
    return () => {
      if (this.running.get(taskId) === abort) this.running.delete(taskId);
    };
  }

  /**
   * A cancellation recorded by this process: it applies here at once (the channel brings it to
   * the other workers, and back here).
   */
  notify(taskId: string): void {
    this.note(taskId, Date.now() + this.ttl);
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    if (!subscriber) return;
    if (subscriber.status !== 'ready') {
      subscriber.disconnect();
      return;
    }
    try {
      await subscriber.quit();
    } catch {
      subscriber.disconnect();
    }
  }

  /** Subscribes (once per connection), then loads the set: nothing falls between the two. */
  private async sync(subscriber: RedisSubscriber): Promise<void> {
    try {
      await subscriber.subscribe(this.keys.cancelChannel);
      // The main connection reads the set: a subscribed connection takes only (un)subscribes.
      const entries = await this.redis!.zrangebyscore(
        this.keys.cancelled,
        Date.now(),
        '+inf',
        'WITHSCORES',
      );
      for (let i = 0; i < entries.length; i += 2) this.note(entries[i], Number(entries[i + 1]));
      if (this.subscriber === subscriber && subscriber.status === 'ready') this.synced = true;
    } catch (error) {
      this.logger.warn(`Could not follow cancellations: ${String(error)}`);
    }
  }

  private note(taskId: string, until: number): void {
    this.mirror.set(taskId, Math.max(until, this.mirror.get(taskId) ?? 0));
    const abort = this.running.get(taskId);
    if (!abort || abort.aborted) return;
    this.logger.log(`Task ${taskId} was cancelled; aborting its handler`);
    abort.abort(new TaskCancelledError(taskId));
  }

  private sweep(): void {
    const now = Date.now();
    for (const [taskId, until] of this.mirror) if (until <= now) this.mirror.delete(taskId);
  }
}
