import { Injectable } from '@nestjs/common';
import type { TaskHandlerOptions } from '../decorators/task-handler.decorator';
import { TaskHandlerDuplicateError, TaskHandlerInvalidError } from '../errors';
import {
  normaliseSchedule,
  settingsProblem,
  uniqueProblem,
  type CogmanTaskHandler,
  type TaskInfo,
} from '../task';
import { TaskInvalidError } from '../errors';
import { didYouMean } from '../util/nearest-name';

/** The keys of `TaskHandlerOptions` (each must be listed): any other is refused (a typo would otherwise pass unseen). */
const HANDLER_OPTION_KEYS: Record<keyof TaskHandlerOptions, true> = {
  retry: true,
  backoff: true,
  timeout: true,
  payload: true,
  unique: true,
  schedule: true,
  rateLimit: true,
  groupConcurrency: true,
};
const HANDLER_OPTIONS: ReadonlySet<string> = new Set(Object.keys(HANDLER_OPTION_KEYS));

/** A handler as the worker runs it: how to get the instance for one task. */
export interface RegisteredTaskHandler {
  name: string;
  /** Where it came from, for error messages: a class name or "function". */
  source: string;
  options: TaskHandlerOptions;
  /** The instance for this task (a new one per task for request-scoped handlers). */
  resolve(task: TaskInfo): CogmanTaskHandler | Promise<CogmanTaskHandler>;
}

/** Task name → handler. Registration rejects duplicates and names that cannot travel. */
@Injectable()
export class TaskHandlerRegistry {
  private readonly handlers = new Map<string, RegisteredTaskHandler>();

  add(handler: RegisteredTaskHandler): void {
    const { name } = handler;
    if (typeof name !== 'string' || name.trim() === '' || Buffer.byteLength(name) > 255) {
      throw new TaskHandlerInvalidError(String(name), 'a task name is 1 to 255 bytes of text');
    }
    const { options } = handler;
    if (typeof options !== 'object' || options === null) {
      throw new TaskHandlerInvalidError(name, 'its options must be an object');
    }
    for (const key of Object.keys(options)) {
      if (!HANDLER_OPTIONS.has(key)) {
        throw new TaskHandlerInvalidError(
          name,
          `"${key}" is not a handler option${didYouMean(key, HANDLER_OPTIONS)}`,
        );
      }
    }
    if (options.payload !== undefined && options.payload !== 'auto' && options.payload !== 'json') {
      throw new TaskHandlerInvalidError(
        name,
        `payload must be "auto" or "json", not ${JSON.stringify(options.payload)}`,
      );
    }
    const problem =
      settingsProblem(options, { backoffFunction: true }) ?? uniqueProblem(options.unique);
    if (problem) throw new TaskHandlerInvalidError(name, `${problem[0]} ${problem[1]}`);
    const { schedule } = handler.options;
    if (schedule !== undefined) {
      try {
        normaliseSchedule({ ...schedule, id: schedule.id ?? name, name });
      } catch (error) {
        if (!(error instanceof TaskInvalidError)) throw error;
        throw new TaskHandlerInvalidError(name, `schedule.${error.field} ${error.reason}`);
      }
    }
    const groups: unknown = handler.options.groupConcurrency;
    if (groups !== undefined && !isCount(groups)) {
      throw new TaskHandlerInvalidError(
        name,
        'groupConcurrency must be a whole number of 1 or more',
      );
    }
    const rate = handler.options.rateLimit as { max?: unknown; duration?: unknown } | undefined;
    if (rate !== undefined && !(isCount(rate?.max) && isCount(rate?.duration))) {
      throw new TaskHandlerInvalidError(
        name,
        'rateLimit must be { max, duration }, each a whole number of 1 or more (duration in ms)',
      );
    }
    const existing = this.handlers.get(name);
    if (existing) throw new TaskHandlerDuplicateError(name, existing.source, handler.source);
    this.handlers.set(name, handler);
  }

  get(name: string): RegisteredTaskHandler | undefined {
    return this.handlers.get(name);
  }

  names(): string[] {
    return [...this.handlers.keys()].sort();
  }
}

function isCount(value: unknown): boolean {
  return Number.isSafeInteger(value) && (value as number) >= 1;
}
