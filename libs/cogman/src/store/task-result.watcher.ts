import { Inject, Injectable, Logger, OnApplicationShutdown, Optional } from '@nestjs/common';
import { RESOLVED_OPTIONS, type ResolvedCogmanOptions } from '../config';
import { ClientClosedError } from '../errors';
import { isTaskStatus, type TaskStatus } from '../task';
import {
  COGMAN_REDIS,
  openSubscriber,
  type CogmanRedis,
  type RedisSubscriber,
} from './redis-connection';
import { redisKeys, type RedisKeys } from './redis-keys';

/**
 * Flags a record as waited for, in one step with reading its status. KEYS: the task's key.
 * ARGV: ttl (ms) for a record this creates (the attempt may not be recorded yet).
 * Returns its status or ''.
 */
const WAIT_SCRIPT = `
redis.call('HSET', KEYS[1], 'waited', '1')
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return redis.call('HGET', KEYS[1], 'status') or ''
`;

/** One attempt being followed; `stop` when it no longer matters. */
export interface ResultWatch {
  /** The attempt's status when the watch began (null: not recorded yet). */
  status: TaskStatus | null;
  stop(): void;
}

type Wake = (closed?: boolean) => void;

/**
 * Tells a waiting client when an attempt's outcome may have been recorded, with no polling and
 * nothing paid by the tasks nobody waits for: `watch` flags the attempt's record, and the task
 * log's script publishes the id of a flagged record on the namespace's results channel when a
 * finished status applies to it. One subscriber connection per process, opened on the first
 * wait; after it reconnects (messages may have been missed meanwhile) every watch is woken to
 * read its record again. Without Redis (the testing kit), `notify` is called by the store.
 */
@Injectable()
export class TaskResultWatcher implements OnApplicationShutdown {
  private readonly logger = new Logger('Cogman:Redis');
  private readonly keys: RedisKeys;
  private readonly watches = new Map<string, Set<Wake>>();
  private subscriber?: RedisSubscriber;
  private subscribing?: Promise<unknown>;
  private closed = false;

  constructor(
    /** Null in the testing kit: the in-memory store calls `notify`. */
    @Optional() @Inject(COGMAN_REDIS) private readonly redis: CogmanRedis | null,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedCogmanOptions,
  ) {
    this.keys = redisKeys(options.namespace);
  }

  /**
   * Follows one attempt: `wake` is called whenever its outcome may have been recorded (and with
   * `true` once this process shuts down). Resolves once the record is flagged, with its status.
   */
  async watch(taskId: string, wake: Wake): Promise<ResultWatch> {
    if (this.closed) throw new ClientClosedError();
    let wakes = this.watches.get(taskId);
    if (!wakes) this.watches.set(taskId, (wakes = new Set()));
    wakes.add(wake);
    const stop = () => {
      const current = this.watches.get(taskId);
      if (!current?.delete(wake) || current.size > 0) return;
      this.watches.delete(taskId);
    };
    if (!this.redis) return { status: null, stop };
    try {
      await this.subscribe(this.redis);
      const status = (await this.redis.eval(
        WAIT_SCRIPT,
        1,
        this.keys.task(taskId),
        this.options.redisTtl,
      )) as string;
      return { status: isTaskStatus(status) ? status : null, stop };
    } catch (error) {
      stop();
      throw error;
    }
  }

  /** The outcome of this attempt may have been recorded: wakes its watches. */
  notify(taskId: string): void {
    const wakes = this.watches.get(taskId);
    if (wakes) for (const wake of [...wakes]) wake();
  }

  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    for (const wakes of [...this.watches.values()]) for (const wake of [...wakes]) wake(true);
    this.watches.clear();
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    if (!subscriber) return;
    try {
      if (subscriber.status === 'ready') await subscriber.quit();
      else subscriber.disconnect();
    } catch {
      subscriber.disconnect();
    }
  }

  private subscribe(redis: CogmanRedis): Promise<unknown> {
    if (this.subscribing) return this.subscribing;
    const subscriber = openSubscriber(redis, 'cogman-results');
    this.subscriber = subscriber;
    subscriber.on('message', (_channel, taskId) => this.notify(taskId));
    subscriber.on('error', () => {});
    let connected = false;
    subscriber.on('ready', () => {
      // The subscriber follows the channel again by itself (ioredis's, or on another node of a
      // Cluster); what was published meanwhile is read from records.
      if (connected) for (const taskId of [...this.watches.keys()]) this.notify(taskId);
      connected = true;
    });
    this.subscribing = subscriber.subscribe(this.keys.resultChannel).catch((error: unknown) => {
      this.logger.warn(`Could not follow task results: ${String(error)}`);
      this.subscribing = undefined;
      this.subscriber = undefined;
      subscriber.disconnect();
      throw error;
    });
    return this.subscribing;
  }
}
