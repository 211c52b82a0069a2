import type { Clock } from '../util/clock';

/**
 * The clock of Cogman's testing kit: it starts at the real time and moves only when the test
 * moves it (`CogmanTesting.advance`), so delays and retry backoffs take no real time.
 */
export class TestClock implements Clock {
  private current = Date.now();

  now(): number {
    return this.current;
  }

  /** Moves the clock forward by `ms` milliseconds. */
  advance(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) {
      throw new RangeError(`advance() takes 0 or more milliseconds, not ${String(ms)}`);
    }
    this.current += ms;
  }

  /** Sets the clock to `at`, if that is later than now. */
  advanceTo(at: number): void {
    this.current = Math.max(this.current, at);
  }
}
