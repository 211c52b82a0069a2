import { createHash } from 'node:crypto';
import { TaskInvalidError } from '../errors';
import { settingsProblem } from './task-settings';
import type { BackoffPolicy, TaskPriority } from './task.interfaces';

/**
 * A recurring task: what to send at each tick, and when ticks are. Exactly one of `cron` and
 * `every`.
 */
export interface TaskScheduleTiming {
  /** A cron expression of 5 fields (minute first) or 6 (second first), e.g. `0 6 * * 1-5`. */
  cron?: string;
  /** IANA time zone the cron expression is read in (with its DST changes). Default UTC. */
  timezone?: string;
  /** A fixed interval in ms: ticks at every multiple of it since the epoch (UTC). */
  every?: number;
  /**
   * Ticks missed while no scheduler ran (or Redis was down), found more than
   * `MISSED_TICK_TOLERANCE` ms late: `once` (the default) runs one task for all of them, `skip`
   * runs none. Ticks found later than due but within the tolerance always run, each.
   */
  missed?: 'once' | 'skip';
}

/** What each tick sends: a task's settings, as `sendTask` takes them. */
export interface TaskScheduleTask {
  payload?: unknown;
  priority?: TaskPriority;
  retry?: number;
  backoff?: BackoffPolicy;
  timeout?: number;
  headers?: Record<string, string>;
}

/** A schedule as given to `upsertSchedule` or in the module's `schedules` option. */
export interface TaskScheduleDefinition extends TaskScheduleTiming, TaskScheduleTask {
  /** Stable id: upserting the same id replaces the schedule. Letters, digits, `.`, `_`, `-`. */
  id: string;
  /** The task to send at each tick. */
  name: string;
}

/** A schedule on a handler (`@TaskHandler(name, { schedule })`): its id defaults to the name. */
export type TaskHandlerSchedule = Omit<TaskScheduleDefinition, 'name' | 'id'> & { id?: string };

/** Ticks later than this are missed ticks (see `TaskScheduleTiming.missed`). */
export const MISSED_TICK_TOLERANCE = 5000;

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const DEFINITION_FIELDS = new Set([
  'id',
  'name',
  'cron',
  'timezone',
  'every',
  'missed',
  'payload',
  'priority',
  'retry',
  'backoff',
  'timeout',
  'headers',
]);

/**
 * Validates a schedule (throws `TaskInvalidError` naming the field) and returns it with only
 * its own fields, in a stable order (so that two equal definitions serialise alike).
 */
export function normaliseSchedule(input: TaskScheduleDefinition): TaskScheduleDefinition {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new TaskInvalidError('schedule', 'must be an object');
  }
  for (const key of Object.keys(input)) {
    if (!DEFINITION_FIELDS.has(key)) throw new TaskInvalidError(key, 'is not a schedule field');
  }
  const { id, name, cron, timezone, every, missed, priority, headers } = input;
  if (typeof id !== 'string' || !ID_PATTERN.test(id)) {
    throw new TaskInvalidError('id', 'must be 1 to 100 letters, digits, ".", "_" or "-"');
  }
  if (typeof name !== 'string' || name.trim() === '' || Buffer.byteLength(name) > 255) {
    throw new TaskInvalidError('name', 'must be a non-empty string of at most 255 bytes');
  }
  if ((cron === undefined) === (every === undefined)) {
    throw new TaskInvalidError('cron', 'or "every" must be given, and not both');
  }
  if (every !== undefined && !(Number.isSafeInteger(every) && every >= 1000)) {
    throw new TaskInvalidError('every', 'must be a whole number of milliseconds, 1000 or more');
  }
  if (timezone !== undefined) {
    if (cron === undefined) throw new TaskInvalidError('timezone', 'applies to cron only');
    if (typeof timezone !== 'string' || !isTimeZone(timezone)) {
      throw new TaskInvalidError(
        'timezone',
        `is not an IANA time zone: ${JSON.stringify(timezone)}`,
      );
    }
  }
  if (cron !== undefined) {
    if (typeof cron !== 'string' || !/^\S+(\s+\S+){4,5}$/.test(cron.trim())) {
      throw new TaskInvalidError('cron', 'must be a cron expression of 5 or 6 fields');
    }
    try {
      nextTick({ cron, timezone }, Date.now());
    } catch (error) {
      throw new TaskInvalidError('cron', `is not valid: ${(error as Error).message}`);
    }
  }
  if (missed !== undefined && missed !== 'once' && missed !== 'skip') {
    throw new TaskInvalidError('missed', 'must be "once" or "skip"');
  }
  if (priority !== undefined && priority !== 'high' && priority !== 'low') {
    throw new TaskInvalidError('priority', 'must be "high" or "low"');
  }
  const problem = settingsProblem(input, { backoffFunction: false });
  if (problem) throw new TaskInvalidError(...problem);
  if (headers !== undefined) {
    if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) {
      throw new TaskInvalidError('headers', 'must be an object of strings');
    }
    for (const [key, value] of Object.entries(headers)) {
      if (typeof value !== 'string')
        throw new TaskInvalidError('headers', `"${key}" must be a string`);
    }
  }
  const out: Record<string, unknown> = {};
  for (const key of DEFINITION_FIELDS) {
    const value = (input as unknown as Record<string, unknown>)[key];
    if (value !== undefined) out[key] = key === 'cron' ? (value as string).trim() : value;
  }
  return out as unknown as TaskScheduleDefinition;
}

/** The first tick strictly after `after` (ms). */
export function nextTick(timing: TaskScheduleTiming, after: number): number {
  if (timing.every !== undefined) return (Math.floor(after / timing.every) + 1) * timing.every;
  return cronParser()
    .parse(timing.cron!, { currentDate: new Date(after), tz: timing.timezone ?? 'UTC' })
    .next()
    .getTime();
}

/**
 * The id of the task a schedule sends at a tick: the same in every process (a UUID derived from
 * both), so that a tick handled twice (its scheduler died mid-way) still makes one task.
 */
export function tickTaskId(scheduleId: string, tick: number): string {
  const hash = createHash('sha1').update(`cogman-schedule#${scheduleId}#${tick}`).digest();
  hash[6] = (hash[6] & 0x0f) | 0x50;
  hash[8] = (hash[8] & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The primary key of a tick's task: the schedule id and the tick time, to find its runs by. */
export function tickPrimaryKey(scheduleId: string, tick: number): string {
  return `${scheduleId}@${new Date(tick).toISOString()}`;
}

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** What Cogman uses of cron-parser (loaded on first use). */
interface CronParser {
  parse(
    expression: string,
    options: { currentDate: Date; tz: string },
  ): { next(): { getTime(): number } };
}

let parser: CronParser | undefined;

function cronParser(): CronParser {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded only with cron schedules
  parser ??= (require('cron-parser') as { CronExpressionParser: CronParser }).CronExpressionParser;
  return parser;
}
