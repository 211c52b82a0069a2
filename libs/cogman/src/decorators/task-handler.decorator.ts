import { DiscoveryService } from '@nestjs/core';
import type {
  BackoffFunction,
  BackoffPolicy,
  TaskHandlerSchedule,
  UniqueTaskOptions,
} from '../task';

/** Settings of one task handler; a task's own settings (given at send time) win. */
export interface TaskHandlerOptions {
  /** How many times a failed task is tried again. Default 0. */
  retry?: number;
  /** Wait between attempts: a policy or a function. Default exponential with jitter. */
  backoff?: BackoffPolicy | BackoffFunction;
  /** Milliseconds an attempt may run. Default the module's `taskTimeout`. */
  timeout?: number;
  /**
   * Makes its tasks unique by default (see `SendTaskOptions.unique`), when they are sent from a
   * process where this handler is registered.
   */
  unique?: UniqueTaskOptions | boolean;
  /**
   * Sends this task on a recurring schedule (cron or `every`), declared in code: created at boot,
   * replaced when it changes, removed when it is no longer declared. Its id defaults to the name.
   */
  schedule?: TaskHandlerSchedule;
}

/** What `@TaskHandler` stores on the class. */
export interface TaskHandlerMetadata extends TaskHandlerOptions {
  name: string;
}

/** Discoverable marker of handler classes (found by `TaskHandlerExplorer`). */
export const TaskHandlerMarker = DiscoveryService.createDecorator<TaskHandlerMetadata>();

/**
 * Marks a provider as the handler of the task `name`. The class implements `CogmanTaskHandler`;
 * its `handle(payload, ctx)` runs once per task. Request-scoped dependencies are resolved per task.
 */
export function TaskHandler(name: string, options: TaskHandlerOptions = {}): ClassDecorator {
  return TaskHandlerMarker({ ...options, name });
}
