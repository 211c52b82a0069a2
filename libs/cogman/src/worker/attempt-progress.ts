import { Inject, Injectable } from '@nestjs/common';
import { RESOLVED_OPTIONS, type ResolvedCogmanOptions } from '../config';
import type { AttemptRecord } from '../store/task-log';

interface Watched {
  record: AttemptRecord;
  /** When the attempt is due its `in_progress` change (ms). */
  due: number;
}

/**
 * Records `in_progress` lazily: an attempt still running `progressAfter` ms after its handler
 * started gets its change then, so a short task costs no change between `queued` and its outcome.
 * One timer looks over the running attempts (only while there are some), every quarter of
 * `progressAfter` (between 50 ms and 1 s), so the change lands at most that late.
 */
@Injectable()
export class AttemptProgress {
  private readonly watched = new Set<Watched>();
  private readonly interval: number;
  private timer?: NodeJS.Timeout;

  constructor(@Inject(RESOLVED_OPTIONS) private readonly options: ResolvedCogmanOptions) {
    this.interval = Math.min(1000, Math.max(50, Math.floor(options.progressAfter / 4)));
  }

  /** Watches a running attempt; call the returned function when its handler is over. */
  watch(record: AttemptRecord): () => void {
    const watched = { record, due: record.startedAt.getTime() + this.options.progressAfter };
    this.watched.add(watched);
    this.timer ??= setInterval(() => this.look(), this.interval).unref();
    return () => {
      this.watched.delete(watched);
      if (this.watched.size === 0) this.stop();
    };
  }

  private look(): void {
    const now = Date.now();
    for (const watched of this.watched) {
      if (watched.due > now) continue;
      this.watched.delete(watched);
      // Deferrable, like every change on the task path: it never holds the handler up.
      watched.record.progress().catch(() => {});
    }
    if (this.watched.size === 0) this.stop();
  }

  private stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
