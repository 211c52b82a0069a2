import { backoffDelay, DEFAULT_BACKOFF } from './backoff';

describe('backoffDelay', () => {
  const low = () => 0;
  const high = () => 1;

  it('doubles from the base delay up to the cap, exactly without jitter', () => {
    const policy = { type: 'exponential', delay: 100, maxDelay: 1000, jitter: false } as const;
    expect([1, 2, 3, 4, 5, 10].map((attempt) => backoffDelay(policy, attempt, null))).toEqual([
      100, 200, 400, 800, 1000, 1000,
    ]);
  });

  it('draws the jittered wait between half and all of it', () => {
    const policy = { type: 'exponential', delay: 1000 } as const;
    expect(backoffDelay(policy, 3, null, low)).toBe(2000);
    expect(backoffDelay(policy, 3, null, high)).toBe(4000);
  });

  it('defaults to exponential from 1 s, capped at 5 minutes, with jitter', () => {
    expect(DEFAULT_BACKOFF).toEqual({
      type: 'exponential',
      delay: 1000,
      maxDelay: 300_000,
      jitter: true,
    });
    expect(backoffDelay(DEFAULT_BACKOFF, 1, null, high)).toBe(1000);
    expect(backoffDelay(DEFAULT_BACKOFF, 1, null, low)).toBe(500);
    expect(backoffDelay(DEFAULT_BACKOFF, 40, null, high)).toBe(300_000);
    expect(backoffDelay(DEFAULT_BACKOFF, 2000, null, high)).toBe(300_000);
  });

  it('waits the same with a fixed policy (no jitter unless asked)', () => {
    expect(backoffDelay({ type: 'fixed', delay: 250 }, 1, null)).toBe(250);
    expect(backoffDelay({ type: 'fixed', delay: 250 }, 9, null)).toBe(250);
    expect(backoffDelay({ type: 'fixed', delay: 250, jitter: true }, 9, null, low)).toBe(125);
  });

  it('asks a custom function, with the attempt and the error, and never waits less than 0', () => {
    const error = new Error('x');
    const seen: unknown[] = [];
    expect(backoffDelay((attempt, e) => (seen.push([attempt, e]), attempt * 10.4), 3, error)).toBe(
      31,
    );
    expect(seen).toEqual([[3, error]]);
    expect(backoffDelay(() => -5, 1, error)).toBe(0);
    expect(backoffDelay(() => NaN, 1, error)).toBe(0);
  });
});
