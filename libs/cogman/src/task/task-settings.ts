import { backoffProblem } from './task-message';

/** Largest timer delay Node accepts (about 24.8 days). */
const MAX_TIMER = 2 ** 31 - 1;

/**
 * The first problem with retry/timeout/backoff settings, as [field, reason], or null. Shared by
 * `sendTask` (where a backoff must be a policy) and handlers (where it may be a function).
 */
export function settingsProblem(
  settings: { retry?: unknown; timeout?: unknown; backoff?: unknown },
  { backoffFunction }: { backoffFunction: boolean },
): [field: string, reason: string] | null {
  const { retry, timeout, backoff } = settings;
  if (retry !== undefined && !(Number.isSafeInteger(retry) && (retry as number) >= 0)) {
    return ['retry', `must be a whole number of 0 or more, not ${JSON.stringify(retry)}`];
  }
  if (
    timeout !== undefined &&
    !(Number.isSafeInteger(timeout) && (timeout as number) > 0 && (timeout as number) <= MAX_TIMER)
  ) {
    return [
      'timeout',
      `must be a whole number of milliseconds from 1 to ${MAX_TIMER}, not ${JSON.stringify(timeout)}`,
    ];
  }
  if (backoff !== undefined && !(backoffFunction && typeof backoff === 'function')) {
    const problem = backoffProblem(backoff);
    if (problem) return ['backoff', problem];
  }
  return null;
}
