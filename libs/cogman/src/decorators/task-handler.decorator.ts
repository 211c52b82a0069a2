import { DiscoveryService } from '@nestjs/core';
import type {
  BackoffFunction,
  BackoffPolicy,
  TaskHandlerSchedule,
  UniqueTaskOptions,
  CogmanTaskHandler,
  TaskName,
  TaskPayloadOf,
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
  /**
   * What `handle` receives: `'auto'` (the default) gives a payload sent as JSON parsed and any
   * other as a Buffer; `'json'` parses every payload as JSON, so that the bytes of a producer that
   * sends no content type (the Go library) arrive as a Node producer's do. A payload that does not
   * parse is dead-lettered, reason `undecodable_payload`.
   */
  payload?: 'auto' | 'json';
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
 * When `CogmanTaskMap` declares task names, `name` must be one of them and `handle`'s payload
 * parameter must take the payload declared for it (a compile error otherwise).
 */
export function TaskHandler<N extends TaskName>(
  name: N,
  options: TaskHandlerOptions = {},
): <C extends abstract new (...args: never[]) => CogmanTaskHandler<TaskPayloadOf<N>>>(
  target: C,
) => void {
  return TaskHandlerMarker({ ...options, name });
}
