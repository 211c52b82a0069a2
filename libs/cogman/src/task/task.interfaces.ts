import type { LoggerService } from '@nestjs/common';
import type { TaskStatus } from './task-status';

export type TaskPriority = 'high' | 'low';

/**
 * How long a failed task waits before its next attempt. `exponential` (the default: 1 s, doubling,
 * at most 5 minutes) or `fixed`; with `jitter`, each wait is drawn between half and all of it, so
 * that tasks failing together do not retry together.
 */
export type BackoffPolicy =
  | { type: 'exponential'; delay?: number; maxDelay?: number; jitter?: boolean }
  | { type: 'fixed'; delay: number; jitter?: boolean };

/**
 * A custom backoff, on a handler only (functions do not travel with a task): milliseconds to
 * wait after `attempt` failed with `error`.
 */
export type BackoffFunction = (attempt: number, error: unknown) => number;

/** What `CogmanClient.sendTask` takes. */
export interface SendTaskOptions<P = unknown> {
  /** Name of the task; a worker must have a handler for it. */
  name: string;
  /** Any JSON value, or a Buffer that reaches the handler byte for byte. */
  payload?: P;
  /** Default `low`. */
  priority?: TaskPriority;
  /** How many times a failed task is tried again. Default: the handler's `retry`, else 0. */
  retry?: number;
  /** Wait between attempts. Default: the handler's `backoff`, else exponential. */
  backoff?: BackoffPolicy;
  /** Milliseconds an attempt may run. Default: the handler's `timeout`, else `taskTimeout`. */
  timeout?: number;
  /** Run no earlier than this many milliseconds from now. */
  delay?: number;
  /** Run no earlier than this time. */
  runAt?: Date;
  /** A key of your own to find the task by. */
  primaryKey?: string;
  /** String headers passed to the handler in `ctx.task.headers`. */
  headers?: Record<string, string>;
  /**
   * The group of the task (a tenant, an account): with a handler's `groupConcurrency`, at most
   * that many tasks of one group run at once. It travels as the `cogman-group` header.
   */
  group?: string;
}

/** What identifies one attempt of a task; the same on every status change. */
export interface TaskInfo {
  taskId: string;
  name: string;
  /** Id of the first attempt; shared by every attempt of the task. */
  originalTaskId: string;
  primaryKey: string | null;
  /** How many times the task may be tried again after a failure (the same on every attempt). */
  retry: number;
  /** 1 for the first attempt, 2 for the first retry, ... */
  attempt: number;
  priority: TaskPriority;
  /** Custom headers given at send time. */
  headers: Record<string, string>;
  createdAt: Date;
}

/** One attempt of a task, as recorded in the task log. */
export interface TaskRecord<P = unknown> extends TaskInfo {
  payload: P;
  status: TaskStatus;
  /** Text of the error of a failed attempt. */
  failError: string | null;
  /** Milliseconds the handler ran, once it has finished. */
  duration: number | null;
  /** When a worker started the handler (known with the outcome, or once it ran `progressAfter`). */
  startedAt: Date | null;
  /** When a `scheduled` attempt is due. */
  runAt: Date | null;
  updatedAt: Date;
  /**
   * What the handler returned (a JSON value, or a Buffer), recorded with `success`. Absent when it
   * returned nothing (or `resultError` says why it was not recorded).
   */
  result?: unknown;
  /** Why the handler's return value was not recorded (larger than `resultMaxSize`, or not JSON). */
  resultError?: string;
  /** The last progress the handler reported (`ctx.progress`): a number 0-100 or a JSON object. */
  progress?: unknown;
}

/** What a handler receives beside the payload. */
export interface TaskContext {
  task: Readonly<TaskInfo>;
  /**
   * Aborted when the attempt times out, when the task is cancelled, and when the application
   * shuts down before the handler finished; `signal.reason` says which.
   */
  signal: AbortSignal;
  logger: LoggerService;
  /**
   * Reports how far the attempt is: a number from 0 to 100, or a small JSON object (at most
   * 4 KiB). Recorded on the attempt at most once per `progressInterval` (the last value always),
   * shown by `getTask` and the REST API, and told to `progress` event listeners at each call.
   */
  progress(value: number | object): void;
}

/** A provider marked with `@TaskHandler('name')` implements this. */
export interface CogmanTaskHandler<P = unknown> {
  handle(payload: P, ctx: TaskContext): unknown;
}

/** A handler registered as a plain function. */
export type TaskHandlerFunction<P = unknown> = (payload: P, ctx: TaskContext) => unknown;
