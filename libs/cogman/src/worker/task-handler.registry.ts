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
    const problem =
      settingsProblem(handler.options, { backoffFunction: true }) ??
      uniqueProblem(handler.options.unique);
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
