import { DiscoveryService } from '@nestjs/core';
import type { BackoffFunction, BackoffPolicy } from '../task';

/** Settings of one task handler; a task's own settings (given at send time) win. */
export interface TaskHandlerOptions {
  /** How many times a failed task is tried again. Default 0. */
  retry?: number;
  /** Wait between attempts: a policy or a function. Default exponential with jitter. */
  backoff?: BackoffPolicy | BackoffFunction;
  /** Milliseconds an attempt may run. Default the module's `taskTimeout`. */
  timeout?: number;
  /**
   * At most `max` attempts of this task start per `duration` ms, across every worker process of
   * the namespace. An attempt over the limit waits (scheduled) for its turn: it is not failed,
   * holds no handler slot, and keeps its attempt number.
   */
  rateLimit?: { max: number; duration: number };
  /**
   * At most this many attempts of one group (`sendTask({ group })`) run at once, across every
   * worker process; each holds a lease in Redis, renewed while it runs, so a dead worker's slot
   * comes back when its lease lapses. Tasks without a group are not limited.
   */
  groupConcurrency?: number;
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
