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

/**
 * A unique task (`sendTask({ unique })`): while a task with the same key has not finished (or,
 * with `ttl`, for `ttl` ms after it was sent, finished or not), sending another returns the
 * existing task instead of creating one.
 */
export interface UniqueTaskOptions {
  /**
   * The key tasks are told apart by. Default: the name and `primaryKey`, or, without a
   * `primaryKey`, the name and a hash of the payload (its JSON as sent, or its bytes).
   */
  key?: string;
  /** Milliseconds the key is held from the send, whether or not the task finished meanwhile. */
  ttl?: number;
}

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
   * Send it only if no task with the same key is unfinished (see `UniqueTaskOptions`); `true`
   * for the default key. Default: the handler's `unique` (where the handler is registered);
   * `false` turns the handler's off.
   */
  unique?: UniqueTaskOptions | boolean;
  /**
   * The group of the task (a tenant, an account): with a handler's `groupConcurrency`, at most
   * that many tasks of one group run at once. It travels as the `cogman-group` header.
   */
  group?: string;
}

/**
 * Task names and the payload each takes, for an application to declare (declaration merging), so
 * that `sendTask` and `@TaskHandler` are checked at compile time:
 *
 * ```ts
 * declare module '@cogman/nestjs' {
 *   interface CogmanTaskMap {
 *     email: { to: string; subject: string };
 *     resize: Buffer;
 *   }
 * }
 * ```
 *
 * Once it names a task, a name it lacks is a type error. Empty as Cogman ships it: any name, any
 * payload.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled by applications
export interface CogmanTaskMap {}

/** The names `CogmanTaskMap` declares; any string while it declares none. */
export type TaskName = [keyof CogmanTaskMap] extends [never]
  ? string
  : Extract<keyof CogmanTaskMap, string>;

/** The payload `CogmanTaskMap` declares for task `N`; `P` for a name it does not declare. */
export type TaskPayloadOf<N extends string, P = unknown> = N extends keyof CogmanTaskMap
  ? CogmanTaskMap[N]
  : P;

/** `SendTaskOptions` whose payload is checked against `CogmanTaskMap` for its name. */
export type TypedSendTaskOptions<N extends string, P = unknown> = Omit<
  SendTaskOptions<P>,
  'name' | 'payload'
> & {
  /** Name of the task; a worker must have a handler for it. */
  name: N;
  /** Any JSON value, or a Buffer; the one `CogmanTaskMap` declares for the name, when it does. */
  payload?: TaskPayloadOf<N, P>;
};

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
   * Only in the answer of `sendTask`/`sendTasks` for a unique task: true when a task with its key
   * existed, and this is that task's record (no task was created), false when it was created.
   */
  deduplicated?: boolean;
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
