import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { RESOLVED_OPTIONS, type ResolvedCogmanOptions } from '../config';
import { TaskCancelledError } from '../errors';
import { COGMAN_REDIS } from '../store/redis-connection';
import { redisKeys } from '../store/redis-keys';
import type { TaskAbort } from './task-abort';

/**
 * Aborts the handler of a cancelled task, in whichever worker process runs it: a cancellation
 * is published on a Redis channel of the namespace, and each worker aborts its own attempt.
 */
@Injectable()
export class TaskCancellation {
  private readonly logger = new Logger('Cogman:Worker');
  private readonly running = new Map<string, TaskAbort>();
  private readonly channel: string;
  private subscriber?: Redis;

  constructor(
    /** Null in the testing kit: cancellations stay in this process. */
    @Optional() @Inject(COGMAN_REDIS) private readonly redis: Redis | null,
    @Inject(RESOLVED_OPTIONS) options: ResolvedCogmanOptions,
  ) {
    this.channel = redisKeys(options.namespace).cancelChannel;
  }

  /**
   * Listens for cancellations (worker processes only). Does not wait for Redis: the subscription
   * is made when it answers, and made again after each reconnection.
   */
  listen(): void {
    if (this.subscriber || !this.redis) return;
    this.subscriber = this.redis.duplicate({ connectionName: 'cogman-cancel' });
    this.subscriber.on('message', (_channel: string, taskId: string) => this.abort(taskId));
    this.subscriber.on('error', () => {});
    this.subscriber.subscribe(this.channel).catch((error: unknown) => {
      this.logger.warn(`Could not listen for cancellations: ${String(error)}`);
    });
  }

  /** Registers a running attempt; call the returned function when it is over. */
  track(taskId: string, abort: TaskAbort): () => void {
    this.running.set(taskId, abort);
    return () => {
      if (this.running.get(taskId) === abort) this.running.delete(taskId);
    };
  }

  /** Tells every worker (this one included) that the attempt was cancelled. */
  async notify(taskId: string): Promise<void> {
    this.abort(taskId);
    await this.redis?.publish(this.channel, taskId);
  }

  async close(): Promise<void> {
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

  private abort(taskId: string): void {
    const abort = this.running.get(taskId);
    if (!abort || abort.aborted) return;
    this.logger.log(`Task ${taskId} was cancelled; aborting its handler`);
    abort.abort(new TaskCancelledError(taskId));
  }
}
