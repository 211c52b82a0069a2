import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { TASK_BROKER, type TaskBroker } from '../broker/task-broker';
import { RESOLVED_OPTIONS, type ResolvedCogmanOptions } from '../config';
import { OfflineBufferFullError } from '../errors';
import { TASK_ARCHIVE, type ArchiveLeases } from '../store/task-archive';
import { TaskLog } from '../store/task-log';
import type { TaskEnvelope } from '../task';
import { within } from '../util/within';

/** Messages published at once when the buffer drains; the broker confirms them together. */
const WINDOW = 200;
/** Tasks taken over from a dead producer at a time. */
const CLAIM_BATCH = 200;

/**
 * Tasks accepted while the broker is unreachable (`sendTask` resolved them `initiated`), in the
 * order they came, published as soon as the broker is back. Bounded by `offlineBufferSize`.
 *
 * With the MongoDB archive they are durable: each is archived with a lease held by this producer
 * (renewed while it waits). If the producer dies, its leases lapse, and another producer (any
 * running Cogman with the archive) takes the tasks over — one claimer per task — and publishes
 * them: re-enqueue. Only such leased tasks are taken over; a task already published, running or
 * finished never is.
 */
@Injectable()
export class OfflineTaskBuffer {
  private readonly logger = new Logger('Cogman:Client');
  private readonly tasks: TaskEnvelope[] = [];
  private draining?: Promise<void>;
  /** This producer, as the holder of leases. */
  private readonly owner = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  private readonly lease: number;
  private timer?: NodeJS.Timeout;
  private archiveWarned = false;

  constructor(
    @Inject(TASK_BROKER) private readonly publisher: TaskBroker,
    private readonly log: TaskLog,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedCogmanOptions,
    @Optional() @Inject(TASK_ARCHIVE) private readonly archive: ArchiveLeases | null = null,
  ) {
    this.lease = Math.max(1000, 3 * options.requestTimeout);
    publisher.onReconnect(() => void this.drain());
  }

  get size(): number {
    return this.tasks.length;
  }

  /**
   * Keeps a task until the broker is back; rejects when the buffer is full. With the archive, it
   * resolves once the archive has the task and its lease (or requestTimeout has passed: then the
   * task is kept in memory only, with a warning).
   */
  async add(task: TaskEnvelope): Promise<void> {
    if (this.tasks.length >= this.options.offlineBufferSize) {
      throw new OfflineBufferFullError(task.taskId, this.options.offlineBufferSize);
    }
    if (this.tasks.length === 0) {
      this.logger.warn(
        `RabbitMQ is unreachable: tasks are kept ${this.archive ? 'in MongoDB' : 'in memory'} until it returns`,
      );
    }
    this.tasks.push(task);
    if (this.archive) await this.hold(task);
  }

  /** Publishes what waits, in order, while the broker is there; one drain at a time. */
  drain(): Promise<void> {
    this.draining ??= this.publishAll().finally(() => (this.draining = undefined));
    return this.draining;
  }

  /** With the archive: takes over what dead producers left, now and every half lease. */
  start(): void {
    if (!this.archive || this.timer) return;
    const tick = () => {
      void this.tend().finally(() => {
        if (this.timer) this.timer = setTimeout(tick, this.lease / 3).unref();
      });
    };
    this.timer = setTimeout(tick, 0).unref();
  }

  /** Stops, waits for a drain under way; says how many tasks are still waiting. */
  async close(): Promise<number> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.draining;
    if (this.tasks.length > 0) {
      if (this.archive) {
        this.logger.warn(
          `${this.tasks.length} task(s) accepted while RabbitMQ was unreachable are left to another producer (MongoDB holds them)`,
        );
      } else {
        this.logger.error(
          `${this.tasks.length} task(s) accepted while RabbitMQ was unreachable were never published`,
        );
      }
    }
    return this.tasks.length;
  }

  /** Archives the task with this producer's lease. */
  private async hold(task: TaskEnvelope): Promise<void> {
    const archive = this.archive!;
    const until = new Date(Date.now() + this.lease);
    const change = {
      taskId: task.taskId,
      status: 'initiated' as const,
      at: task.createdAt,
      task,
      lease: { owner: this.owner, until },
    };
    const timeout = this.options.requestTimeout;
    try {
      await within(archive.write(change), timeout, () => {
        throw new Error(`no answer within ${timeout} ms`);
      });
    } catch (error) {
      if (!this.archiveWarned) {
        this.archiveWarned = true;
        this.logger.warn(
          `MongoDB did not take a task accepted while RabbitMQ is unreachable (${String(error)}); it is kept in memory only`,
        );
      }
    }
  }

  /** Renews this producer's leases, and takes over the tasks of producers that died. */
  private async tend(): Promise<void> {
    const archive = this.archive!;
    try {
      if (this.tasks.length > 0) {
        const owned = new Set(
          await archive.renewLease(
            this.owner,
            this.tasks.map((task) => task.taskId),
            this.lease,
          ),
        );
        // Taken over by another producer after a lapse: theirs to publish now.
        const lost = this.tasks.filter((task) => !owned.has(task.taskId));
        if (lost.length > 0) this.forget(lost);
      }
      if (this.publisher.connected && archive.connected) await this.reclaim(archive);
    } catch (error) {
      this.logger.debug?.(`Could not tend the offline tasks: ${String(error)}`);
    }
  }

  private async reclaim(archive: ArchiveLeases): Promise<void> {
    let taken = 0;
    for (;;) {
      const claimed = await archive.claimOrphans(this.owner, this.lease, CLAIM_BATCH);
      for (const task of claimed) {
        // The archive may lag behind the log: a task Redis knows as published stays as it is.
        const current = await this.log.get(task.taskId).catch(() => null);
        if (current && current.status !== 'initiated') {
          void archive
            .write({ taskId: task.taskId, status: current.status, at: current.updatedAt })
            .catch(() => {});
          continue;
        }
        this.tasks.push(task);
        taken++;
      }
      if (claimed.length < CLAIM_BATCH) break;
    }
    if (taken > 0) {
      this.logger.log(`Took over ${taken} task(s) a stopped producer had not published`);
      void this.drain();
    }
  }

  private forget(lost: TaskEnvelope[]): void {
    const ids = new Set(lost.map((task) => task.taskId));
    const kept = this.tasks.filter((task) => !ids.has(task.taskId));
    this.tasks.splice(0, this.tasks.length, ...kept);
  }

  private async publishAll(): Promise<void> {
    let published = 0;
    while (this.tasks.length > 0 && this.publisher.connected) {
      const window = this.tasks.splice(0, WINDOW);
      const results = await Promise.allSettled(window.map((task) => this.publisher.publish(task)));
      const failed = window.filter((_, i) => results[i].status === 'rejected');
      // Put back what did not go, ahead of the rest, in order; try again on the next reconnect.
      this.tasks.unshift(...failed);
      const sent = window.filter((_, i) => results[i].status === 'fulfilled');
      published += sent.length;
      // Recorded `initiated`, with the description, when accepted.
      await Promise.all(sent.map((task) => this.log.queued(task, { described: true })));
      if (failed.length > 0) break;
    }
    if (published > 0) {
      this.logger.log(
        `Published ${published} task(s) accepted while RabbitMQ was unreachable${this.tasks.length ? `; ${this.tasks.length} still waiting` : ''}`,
      );
    }
  }
}
