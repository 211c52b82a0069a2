import { Injectable } from '@nestjs/common';
import { TaskInvalidError, TasksNotSentError } from '../errors';
import { TaskLog } from '../store/task-log';
import {
  encodePayload,
  isReservedHeader,
  newTaskId,
  retryTaskId,
  type SendTaskOptions,
  type TaskEnvelope,
  type TaskPriority,
  type TaskRecord,
  type TaskStatus,
} from '../task';
import { CogmanInspector, type CogmanServices } from '../cogman.inspector';
import { TaskDispatcher } from './task.dispatcher';

const PRIORITIES: readonly TaskPriority[] = ['high', 'low'];

/** Sends tasks and reads their records. Inject it anywhere. */
@Injectable()
export class CogmanClient {
  constructor(
    private readonly dispatcher: TaskDispatcher,
    private readonly store: TaskLog,
    private readonly inspector: CogmanInspector,
  ) {}

  /**
   * Records the task, publishes it and resolves with its record once the broker has confirmed
   * the message. An invalid task is rejected with `TaskInvalidError` before anything is written.
   */
  async sendTask<P = unknown>(options: SendTaskOptions<P>): Promise<TaskRecord<P>> {
    const task = buildTask(options);
    const status = await this.dispatcher.dispatch(task);
    return sentRecord(task, options.payload as P, status);
  }

  /**
   * Sends many tasks at once, each with the guarantees of `sendTask`. All are validated first:
   * one invalid task rejects the call (`TaskInvalidError`, its field prefixed with the index)
   * before anything is sent. If some cannot be published, the call rejects with
   * `TasksNotSentError`, which lists them and holds the records of those that were sent.
   */
  async sendTasks<P = unknown>(tasks: SendTaskOptions<P>[]): Promise<TaskRecord<P>[]> {
    if (!Array.isArray(tasks)) throw new TaskInvalidError('tasks', 'must be an array');
    const built = tasks.map((options, index) => {
      try {
        return buildTask(options);
      } catch (error) {
        if (!(error instanceof TaskInvalidError)) throw error;
        throw new TaskInvalidError(`tasks[${index}].${error.field}`, error.reason, {
          cause: error,
        });
      }
    });
    const results = await Promise.allSettled(built.map((task) => this.dispatcher.dispatch(task)));
    const records = results.map((result, i) =>
      result.status === 'fulfilled'
        ? sentRecord(built[i], tasks[i].payload as P, result.value)
        : undefined,
    );
    const failures = results.flatMap((result, index) =>
      result.status === 'rejected' ? [{ index, error: result.reason as unknown }] : [],
    );
    if (failures.length > 0) throw new TasksNotSentError(failures, records);
    return records as TaskRecord<P>[];
  }

  /** The record of one attempt, or null when it is unknown (or expired from the log). */
  getTask<P = unknown>(taskId: string): Promise<TaskRecord<P> | null> {
    return this.store.get(taskId) as Promise<TaskRecord<P> | null>;
  }

  /**
   * Every attempt of a task, first to last, given the id of any of them (retries have ids
   * derived from the first attempt's, so the chain is found without a search).
   */
  async getAttempts<P = unknown>(taskId: string): Promise<TaskRecord<P>[]> {
    const some = await this.store.get(taskId);
    if (!some) return [];
    const first = some.attempt === 1 ? some : await this.store.get(some.originalTaskId);
    if (!first) return [some as TaskRecord<P>];
    const chain = [first];
    for (let attempt = 2; attempt <= first.retry + 1; attempt++) {
      const next = await this.store.get(retryTaskId(first.taskId, attempt));
      if (!next) break;
      chain.push(next);
    }
    return chain as TaskRecord<P>[];
  }

  /** What Cogman is connected to and runs in this process. */
  services(): CogmanServices {
    return this.inspector.services();
  }
}

function sentRecord<P>(task: TaskEnvelope, payload: P, status: TaskStatus): TaskRecord<P> {
  return { ...task, payload, status, failError: null, duration: null, updatedAt: new Date() };
}

/** Validates a task and gives it an id; throws `TaskInvalidError` naming the bad field. */
export function buildTask(options: SendTaskOptions): TaskEnvelope {
  if (typeof options !== 'object' || options === null) {
    throw new TaskInvalidError('options', 'must be an object');
  }
  const { name, priority = 'low', retry = 0, primaryKey, headers = {} } = options;
  if (typeof name !== 'string' || name.trim() === '' || Buffer.byteLength(name) > 255) {
    throw new TaskInvalidError('name', 'must be a non-empty string of at most 255 bytes');
  }
  if (!PRIORITIES.includes(priority)) {
    throw new TaskInvalidError(
      'priority',
      `must be "high" or "low", not ${JSON.stringify(priority)}`,
    );
  }
  if (!Number.isSafeInteger(retry) || retry < 0) {
    throw new TaskInvalidError(
      'retry',
      `must be a whole number of 0 or more, not ${String(retry)}`,
    );
  }
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
  const payload = encodePayload(options.payload);
  const taskId = newTaskId();
  return {
    taskId,
    name,
    originalTaskId: taskId,
    primaryKey: primaryKey ?? null,
    retry,
    attempt: 1,
    priority,
    headers: { ...headers },
    createdAt: new Date(),
    payload,
  };
}
