import type { BackoffFunction, BackoffPolicy } from '../task';

/** The default wait between attempts: exponential from 1 s, at most 5 minutes, with jitter. */
export const DEFAULT_BACKOFF = {
  type: 'exponential',
  delay: 1000,
  maxDelay: 300_000,
  jitter: true,
} as const satisfies BackoffPolicy;

/**
 * Milliseconds to wait before the attempt after `attempt` (1 for the first) failed with `error`.
 * `random` is injectable so the figures can be checked.
 */
export function backoffDelay(
  backoff: BackoffPolicy | BackoffFunction,
  attempt: number,
  error: unknown,
  random: () => number = Math.random,
): number {
  if (typeof backoff === 'function') {
    const wait = backoff(attempt, error);
    return Number.isFinite(wait) && wait > 0 ? Math.round(wait) : 0;
  }
  const base =
    backoff.type === 'fixed'
      ? backoff.delay
      : Math.min(
          backoff.maxDelay ?? DEFAULT_BACKOFF.maxDelay,
          (backoff.delay ?? DEFAULT_BACKOFF.delay) * 2 ** (attempt - 1),
        );
  const jitter = backoff.jitter ?? backoff.type === 'exponential';
  // "Equal jitter": at least half the wait, so retries still back off.
  return Math.round(jitter ? base / 2 + (random() * base) / 2 : base);
}
