import type { AttemptRecord } from '../store/task-log';

/**
 * The progress of one running attempt (`ctx.progress`), throttled: at most one write per
 * `interval` ms; a value reported in between waits for the end of the interval, replaced by any
 * later one, and the last value is always written (with the outcome, if the handler ends first).
 * Created on the first report: an attempt that reports nothing costs nothing.
 */
export class ProgressReport {
  private last = Number.NEGATIVE_INFINITY;
  private pending?: string;
  private timer?: NodeJS.Timeout;
  private ended = false;

  constructor(
    private readonly record: AttemptRecord,
    private readonly interval: number,
  ) {}

  /** A new value (JSON text). */
  report(text: string): void {
    if (this.ended) return;
    const now = Date.now();
    if (!this.timer && now - this.last >= this.interval) {
      this.last = now;
      this.write(text);
      return;
    }
    this.pending = text;
    this.timer ??= setTimeout(() => this.flush(), this.last + this.interval - now);
    this.timer.unref();
  }

  /** The handler is over: a value not written yet goes with the attempt's next change. */
  end(): void {
    this.ended = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.record.carryProgress(this.pending);
    this.pending = undefined;
  }

  private flush(): void {
    this.timer = undefined;
    const text = this.pending;
    if (text === undefined || this.ended) return;
    this.pending = undefined;
    this.last = Date.now();
    this.write(text);
  }

  private write(text: string): void {
    // Deferrable, like every change on the task path: it never holds the handler up.
    this.record.reportProgress(text).catch(() => {});
  }
}
