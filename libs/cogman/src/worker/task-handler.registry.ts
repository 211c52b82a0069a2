import { Injectable } from '@nestjs/common';
import type { TaskHandlerOptions } from '../decorators/task-handler.decorator';
import { TaskHandlerDuplicateError, TaskHandlerInvalidError } from '../errors';
import { settingsProblem, type CogmanTaskHandler, type TaskInfo } from '../task';

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
    const problem = settingsProblem(handler.options, { backoffFunction: true });
    if (problem) throw new TaskHandlerInvalidError(name, `${problem[0]} ${problem[1]}`);
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
