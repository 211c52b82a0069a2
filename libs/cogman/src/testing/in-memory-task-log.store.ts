import { BINARY_CONTENT_TYPE, decodePayload, movesForward, type TaskRecord } from '../task';
import type { TaskLogStore, TaskStatusChange, TaskStatusResult } from '../store/task-log.store';

/** A task log in memory with the same rules as the Redis one, for unit specs. */
export class InMemoryTaskLogStore implements TaskLogStore {
  readonly records = new Map<string, TaskRecord>();
  readonly changes: TaskStatusChange[] = [];

  record(change: TaskStatusChange): Promise<TaskStatusResult> {
    this.changes.push(change);
    const current = this.records.get(change.taskId);
    const previous = current?.status ?? null;
    const applied = movesForward(previous, change.status);
    const { task } = change;
    const base: TaskRecord = current ?? {
      taskId: change.taskId,
      name: task?.name ?? '',
      originalTaskId: task?.originalTaskId ?? change.taskId,
      primaryKey: task?.primaryKey ?? null,
      retry: task?.retry ?? 0,
      attempt: task?.attempt ?? 1,
      priority: task?.priority ?? 'low',
      headers: task?.headers ?? {},
      createdAt: task?.createdAt ?? change.at,
      payload: task ? safeDecode(task.payload) : null,
      status: change.status,
      failError: null,
      duration: null,
      updatedAt: change.at,
    };
    this.records.set(
      change.taskId,
      applied
        ? {
            ...base,
            status: change.status,
            updatedAt: change.at,
            failError: change.failError ?? base.failError,
            duration: change.duration ?? base.duration,
          }
        : base,
    );
    return Promise.resolve({ applied, previous });
  }

  get(taskId: string): Promise<TaskRecord | null> {
    return Promise.resolve(this.records.get(taskId) ?? null);
  }

  statuses(taskId: string): string[] {
    return this.changes.filter((change) => change.taskId === taskId).map((change) => change.status);
  }
}

function safeDecode(payload: Parameters<typeof decodePayload>[0]): unknown {
  try {
    return decodePayload(payload);
  } catch {
    return payload.contentType === BINARY_CONTENT_TYPE ? payload.body : null;
  }
}
