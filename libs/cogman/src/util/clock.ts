/**
 * Where Cogman reads the time that decides when a task is due: a delayed task's due time, a
 * retry's backoff, and the scheduler's "now". The system clock, except in the testing kit, whose
 * clock a test moves forward.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const SYSTEM_CLOCK: Clock = { now: () => Date.now() };

export const COGMAN_CLOCK = Symbol('cogman:clock');
