import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { RESOLVED_OPTIONS, type ResolvedCogmanOptions } from '../config';
import { StoreUnavailableError, TaskInvalidError } from '../errors';
import type { TaskPriority } from '../task';
import { COGMAN_REDIS, type CogmanRedis } from '../store/redis-connection';
import { redisKeys, type RedisKeys } from '../store/redis-keys';
import { within } from '../util/within';

/** The priorities a namespace has, in the order they are shown. */
const PRIORITIES: readonly TaskPriority[] = ['high', 'low'];

/** How often each process reads the paused state of its namespace from Redis. */
export const PAUSE_POLL_INTERVAL = 500;

/** Whether each priority of the namespace is paused, and since when. */
export type CogmanPauses = Record<TaskPriority, { paused: boolean; since: Date | null }>;

/** Called when this process learns that a priority was paused or resumed. */
export type PauseListener = (priority: TaskPriority, paused: boolean) => void;

/**
 * The paused priorities of a namespace. The state lives in Redis (a hash, priority → since when),
 * so every process of the namespace sees it and a worker that starts while a priority is paused
 * stays paused. Each process mirrors it in memory, reading it every `PAUSE_POLL_INTERVAL` ms
 * (one small read, on the connection it has already): a pause reaches every worker within about a
 * second, and one made in this process applies here at once. While Redis is unreachable, the
 * mirror keeps the last state it read.
 */
@Injectable()
export class QueuePauses {
  private readonly logger = new Logger('Cogman:Worker');
  private readonly keys: RedisKeys;
  /** Paused priority → since when (ms), as last read. */
  private readonly mirror = new Map<TaskPriority, number>();
  private readonly listeners: PauseListener[] = [];
  private poller?: NodeJS.Timeout;
  private reading = false;

  constructor(
    /** Null in the testing kit: the state stays in this process. */
    @Optional() @Inject(COGMAN_REDIS) private readonly redis: CogmanRedis | null,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedCogmanOptions,
  ) {
    this.keys = redisKeys(options.namespace);
  }

  /** Tells `listener` of every change this process learns of, from now on. */
  onChange(listener: PauseListener): void {
    this.listeners.push(listener);
  }

  /**
   * Follows the namespace's paused state: resolves once it has been read (or after `wait` ms,
   * then as if nothing were paused until a read succeeds), then reads it again periodically.
   */
  async listen(wait: number): Promise<void> {
    if (this.poller || !this.redis) return;
    this.poller = setInterval(() => void this.refresh(), PAUSE_POLL_INTERVAL);
    this.poller.unref();
    await within(this.refresh(), wait, () => undefined);
  }

  close(): void {
    clearInterval(this.poller);
    this.poller = undefined;
  }

  /** Whether this process holds the priority paused now (its mirror). */
  isPaused(priority: TaskPriority): boolean {
    return this.mirror.has(priority);
  }

  /** The priorities this process holds paused now (its mirror). */
  pausedNow(): TaskPriority[] {
    return PRIORITIES.filter((priority) => this.mirror.has(priority));
  }

  /** Pauses one priority, or the whole namespace (both) when none is given. */
  async pause(priority?: TaskPriority): Promise<CogmanPauses> {
    const targets = this.targets(priority);
    const now = Date.now();
    if (this.redis) {
      const redis = this.redis;
      // HSETNX keeps the first pause's time when a priority is paused twice.
      const writing = Promise.all(
        targets.map((target) => redis.hsetnx(this.keys.paused, target, String(now))),
      );
      await this.write('a pause', writing);
    }
    for (const target of targets) if (!this.mirror.has(target)) this.apply(target, now);
    return this.state();
  }

  /** Resumes one priority, or the whole namespace when none is given. */
  async resume(priority?: TaskPriority): Promise<CogmanPauses> {
    const targets = this.targets(priority);
    if (this.redis) await this.write('a resume', this.redis.hdel(this.keys.paused, ...targets));
    for (const target of targets) if (this.mirror.has(target)) this.apply(target, null);
    return this.state();
  }

  /** The namespace's paused state, read from Redis (the mirror in the testing kit). */
  async state(): Promise<CogmanPauses> {
    const since = this.redis
      ? await this.write('a read of the paused queues', this.redis.hgetall(this.keys.paused))
      : Object.fromEntries([...this.mirror].map(([p, at]) => [p, String(at)]));
    const entry = (priority: TaskPriority) => {
      const at = Number(since[priority]);
      return since[priority] === undefined
        ? { paused: false, since: null }
        : { paused: true, since: new Date(at) };
    };
    return { high: entry('high'), low: entry('low') };
  }

  private targets(priority: TaskPriority | undefined): TaskPriority[] {
    if (priority === undefined) return [...PRIORITIES];
    if (!PRIORITIES.includes(priority)) {
      throw new TaskInvalidError(
        'priority',
        `must be "high" or "low", not ${JSON.stringify(priority)}`,
      );
    }
    return [priority];
  }

  /** Reads the state once (never two reads at a time, none while Redis is unreachable). */
  private async refresh(): Promise<void> {
    if (!this.redis || this.reading || this.redis.status !== 'ready') return;
    this.reading = true;
    try {
      const since = await this.redis.hgetall(this.keys.paused);
      for (const priority of PRIORITIES) {
        const paused = since[priority] !== undefined;
        if (paused !== this.mirror.has(priority)) {
          this.apply(priority, paused ? Number(since[priority]) : null);
        }
      }
    } catch (error) {
      this.logger.warn(`Could not read the paused queues: ${String(error)}`);
    } finally {
      this.reading = false;
    }
  }

  private apply(priority: TaskPriority, since: number | null): void {
    if (since === null) this.mirror.delete(priority);
    else this.mirror.set(priority, since);
    this.logger.log(
      `${priority === 'high' ? 'High' : 'Low'} priority tasks ${since === null ? 'resumed' : 'paused'}`,
    );
    for (const listener of this.listeners) listener(priority, since !== null);
  }

  private write<T>(what: string, writing: Promise<T>): Promise<T> {
    const timeout = this.options.requestTimeout;
    return within(writing, timeout, () => {
      writing.catch(() => {});
      throw new StoreUnavailableError(what, timeout);
    });
  }
}
