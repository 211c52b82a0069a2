import type { LoggerService } from '@nestjs/common';
import { ArchiveBufferFullError, ArchiveUnavailableError } from '../../errors';
import type { TaskStatusChange } from '../task-log.store';

/**
 * Writes one batch of changes, in order. It throws when the batch should be sent again later
 * (the server is unreachable, a concurrent insert collided); it returns the tasks whose changes
 * can never be written (a document the server refuses), which are then given up.
 */
export type ArchiveSink = (
  changes: readonly TaskStatusChange[],
) => Promise<ReadonlyMap<string, Error> | void>;

export interface ArchiveWriterOptions {
  /** Most changes waiting, written or not yet; past it, changes are refused. */
  bufferSize: number;
  /** Most changes per batch. */
  batchSize: number;
  /** How long the first change of a batch waits for others (ms). */
  batchDelay: number;
  /** First and longest pause between two tries of a batch (ms). */
  retryDelay: { min: number; max: number };
  logger: LoggerService;
}

interface Entry {
  change: TaskStatusChange;
  resolve: () => void;
  reject: (error: Error) => void;
}

/**
 * The write path of the archive: a bounded buffer in front of a sink that writes batches one at
 * a time, in arrival order. A batch that fails is tried again with backoff until it is written,
 * so an unreachable server holds changes back (up to `bufferSize`) but loses none and blocks
 * nobody; once the buffer is full, new changes are refused, with one warning per episode.
 */
export class TaskArchiveWriter {
  private queue: Entry[] = [];
  private batch: Entry[] = [];
  private running = false;
  private closed = false;
  private timer?: NodeJS.Timeout;
  private resume?: () => void;
  private failing = false;
  private full = false;
  private refused = 0;
  private drained: (() => void)[] = [];

  constructor(
    private readonly sink: ArchiveSink,
    private options: ArchiveWriterOptions,
  ) {}

  /** Changes waiting, including the batch being written. */
  get backlog(): number {
    return this.queue.length + this.batch.length;
  }

  /** Resolves once the change is written; rejects if it is refused or given up. */
  write(change: TaskStatusChange): Promise<void> {
    if (this.closed) {
      return Promise.reject(new ArchiveUnavailableError('Cogman has shut down'));
    }
    if (this.backlog >= this.options.bufferSize) {
      this.refused++;
      if (!this.full) {
        this.full = true;
        this.options.logger.warn(
          `MongoDB archive buffer is full (${this.options.bufferSize} status changes waiting, ` +
            'see archiveBufferSize): further status changes are not archived until it drains',
        );
      }
      return Promise.reject(new ArchiveBufferFullError(this.options.bufferSize));
    }
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ change, resolve, reject });
      this.schedule();
    });
  }

  /** Adjusts how long a batch waits for changes, once the server is known. */
  tune({ batchDelay }: { batchDelay: number }): void {
    this.options = { ...this.options, batchDelay };
  }

  /** Tries a failing batch again now (the server is back). */
  wake(): void {
    this.resume?.();
  }

  /** Writes what is waiting; resolves true once all of it is written, false after `timeout`. */
  flush(timeout: number): Promise<boolean> {
    if (this.backlog === 0) return Promise.resolve(true);
    this.run();
    return new Promise<boolean>((resolve) => {
      const done = (drained: boolean) => {
        clearTimeout(timer);
        this.drained = this.drained.filter((waiter) => waiter !== onDrained);
        resolve(drained);
      };
      const onDrained = () => done(true);
      const timer = setTimeout(() => done(false), timeout);
      this.drained.push(onDrained);
    });
  }

  /**
   * Stops writing. Changes still waiting are given up (their promises reject); returns how many.
   */
  close(): number {
    if (this.closed) return 0;
    this.closed = true;
    clearTimeout(this.timer);
    this.resume?.();
    const left = [...this.batch, ...this.queue];
    this.batch = [];
    this.queue = [];
    const error = new ArchiveUnavailableError('Cogman shut down before the change was written');
    for (const entry of left) entry.reject(error);
    return left.length;
  }

  private schedule(): void {
    if (this.running) return;
    if (this.queue.length >= this.options.batchSize) {
      this.run();
    } else if (!this.timer) {
      this.timer = setTimeout(() => this.run(), this.options.batchDelay);
      this.timer.unref();
    }
  }

  private run(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.running || this.closed) return;
    this.running = true;
    void this.loop().finally(() => {
      this.running = false;
      // Changes that arrived while the last batch was being settled.
      if (!this.closed && this.queue.length > 0) this.schedule();
    });
  }

  private async loop(): Promise<void> {
    while (!this.closed && this.queue.length > 0) {
      this.batch = this.queue.splice(0, this.options.batchSize);
      const failures = await this.writeBatch(this.batch.map((entry) => entry.change));
      if (this.closed) return;
      for (const entry of this.batch) {
        const failure = failures?.get(entry.change.taskId);
        if (failure) entry.reject(failure);
        else entry.resolve();
      }
      this.batch = [];
      if (this.full && this.backlog < this.options.bufferSize) {
        this.full = false;
        this.options.logger.warn(
          `MongoDB archive buffer has room again: ${this.refused} status change(s) were not ` +
            'archived while it was full',
        );
        this.refused = 0;
      }
      if (this.backlog === 0) {
        for (const waiter of this.drained) waiter();
      }
    }
  }

  /** Tries a batch until it is written or the writer closes. */
  private async writeBatch(
    changes: TaskStatusChange[],
  ): Promise<ReadonlyMap<string, Error> | void> {
    for (let attempt = 0; !this.closed; attempt++) {
      try {
        const failures = await this.sink(changes);
        if (this.failing) {
          this.failing = false;
          this.options.logger.log(`MongoDB archive writes resumed (${this.backlog} waiting)`);
        }
        return failures;
      } catch (error) {
        if (this.closed) return;
        if (!this.failing) {
          this.failing = true;
          this.options.logger.warn(
            `MongoDB archive write failed, retrying until it succeeds (${this.backlog} status ` +
              `changes waiting): ${error instanceof Error ? error.message : String(error)}`,
          );
        }
        const { min, max } = this.options.retryDelay;
        await this.sleep(Math.min(max, min * 2 ** attempt));
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const resume = () => {
        clearTimeout(timer);
        this.resume = undefined;
        resolve();
      };
      const timer = setTimeout(resume, ms);
      timer.unref();
      this.resume = resume;
    });
  }
}
