import { TaskInvalidError } from '../errors';
import { didYouMean } from '../util/nearest-name';
import { newTaskId } from './task-id';
import { encodePayload, GROUP_HEADER, isReservedHeader, type TaskEnvelope } from './task-message';
import { settingsProblem } from './task-settings';
import { uniqueProblem } from './task-unique';
import type { SendTaskOptions, TaskPriority } from './task.interfaces';

const PRIORITIES: readonly TaskPriority[] = ['high', 'low'];

/** The keys of `SendTaskOptions` (each must be listed): any other is refused (a typo would otherwise pass unseen). */
const TASK_OPTION_KEYS: Record<keyof SendTaskOptions, true> = {
  name: true,
  payload: true,
  priority: true,
  retry: true,
  backoff: true,
  timeout: true,
  delay: true,
  runAt: true,
  primaryKey: true,
  headers: true,
  unique: true,
  group: true,
};
const TASK_OPTIONS: ReadonlySet<string> = new Set(Object.keys(TASK_OPTION_KEYS));

/** How `buildTask` checks a task beside its own fields. */
export interface BuildTaskLimits {
  /** Most bytes of an encoded payload (the module's `maxPayloadSize`). */
  maxPayloadSize?: number;
}

/** A task to send: valid, with its id, and when it is due (undefined: now). */
export interface BuiltTask {
  task: TaskEnvelope;
  runAt?: Date;
}

/** Validates a task and gives it an id; throws `TaskInvalidError` naming the bad field. */
export function buildTask(
  options: SendTaskOptions,
  now = new Date(),
  { maxPayloadSize }: BuildTaskLimits = {},
): BuiltTask {
  if (typeof options !== 'object' || options === null) {
    throw new TaskInvalidError('options', 'must be an object');
  }
  for (const key in options) {
    if (!TASK_OPTIONS.has(key)) {
      throw new TaskInvalidError(key, `is not a task option${didYouMean(key, TASK_OPTIONS)}`);
    }
  }
  const { name, priority = 'low', retry, timeout, backoff, primaryKey, headers = {} } = options;
  if (typeof name !== 'string' || name.trim() === '' || Buffer.byteLength(name) > 255) {
    throw new TaskInvalidError('name', 'must be a non-empty string of at most 255 bytes');
  }
  if (!PRIORITIES.includes(priority)) {
    throw new TaskInvalidError(
      'priority',
      `must be "high" or "low", not ${JSON.stringify(priority)}`,
    );
  }
  const problem = settingsProblem({ retry, timeout, backoff }, { backoffFunction: false });
  if (problem) throw new TaskInvalidError(...problem);
  if (primaryKey !== undefined && (typeof primaryKey !== 'string' || primaryKey === '')) {
    throw new TaskInvalidError('primaryKey', 'must be a non-empty string when given');
  }
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) {
    throw new TaskInvalidError('headers', 'must be an object of strings');
  }
  for (const [key, value] of Object.entries(headers)) {
    if (typeof value !== 'string') {
      throw new TaskInvalidError('headers', `"${key}" must be a string`);
    }
    if (isReservedHeader(key)) {
      throw new TaskInvalidError('headers', `"${key}" is reserved for Cogman`);
    }
  }
  const unique = uniqueProblem(options.unique);
  if (unique) throw new TaskInvalidError(...unique);
  const { group } = options;
  if (group !== undefined && (typeof group !== 'string' || group === '' || group.length > 255)) {
    throw new TaskInvalidError('group', 'must be a non-empty string of at most 255 characters');
  }
  const runAt = dueTime(options, now);
  const payload = encodePayload(options.payload);
  if (maxPayloadSize !== undefined && payload.body.length > maxPayloadSize) {
    throw new TaskInvalidError(
      'payload',
      `is ${payload.body.length} bytes encoded, more than maxPayloadSize (${maxPayloadSize} bytes)`,
    );
  }
  const taskId = newTaskId();
  const task: TaskEnvelope = {
    taskId,
    name,
    originalTaskId: taskId,
    primaryKey: primaryKey ?? null,
    attempt: 1,
    priority,
    // The group travels as a header, so every copy of the task (message, record, archive) has it.
    headers: group === undefined ? { ...headers } : { ...headers, [GROUP_HEADER]: group },
    createdAt: now,
    payload,
  };
  if (retry !== undefined) task.retry = retry;
  if (timeout !== undefined) task.timeout = timeout;
  if (backoff !== undefined) task.backoff = backoff;
  return runAt ? { task, runAt } : { task };
}

/** When a task with `delay` or `runAt` is due; undefined when it is due now (or past). */
function dueTime({ delay, runAt }: SendTaskOptions, now: Date): Date | undefined {
  if (delay !== undefined && runAt !== undefined) {
    throw new TaskInvalidError('delay', 'and "runAt" cannot both be given');
  }
  if (delay !== undefined) {
    if (!Number.isSafeInteger(delay) || delay < 0) {
      throw new TaskInvalidError(
        'delay',
        `must be a whole number of milliseconds, not ${String(delay)}`,
      );
    }
    return delay > 0 ? new Date(now.getTime() + delay) : undefined;
  }
  if (runAt !== undefined) {
    if (!(runAt instanceof Date) || Number.isNaN(runAt.getTime())) {
      throw new TaskInvalidError('runAt', 'must be a valid Date');
    }
    return runAt.getTime() > now.getTime() ? new Date(runAt) : undefined;
  }
  return undefined;
}
