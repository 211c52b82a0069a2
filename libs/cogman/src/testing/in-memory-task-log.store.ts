import type {
  StoredTask,
  TaskLogStore,
  TaskStatusChange,
  TaskStatusResult,
} from '../store/task-log.store';
import { decodePayload, movesForward, type TaskEnvelope, type TaskRecord } from '../task';

/** A task log in memory with the same rules as the Redis one, for unit specs. */
export class InMemoryTaskLogStore implements TaskLogStore {
  readonly tasks = new Map<string, StoredTask>();
  readonly changes: TaskStatusChange[] = [];
  /** Scheduled attempt id → due time (ms); claimed ones → lease end. */
  readonly schedule = new Map<string, number>();
  readonly claims = new Map<string, number>();
  available = true;

  record(change: TaskStatusChange): Promise<TaskStatusResult> {
    this.changes.push(change);
    if (change.unlessCancelled && change.unlessCancelled !== change.taskId) {
      if (this.tasks.get(change.unlessCancelled)?.record.status === 'cancelled') {
        return Promise.resolve({ applied: false, previous: 'cancelled' });
      }
    }
    const current = this.tasks.get(change.taskId) ?? (change.task && stored(change.task, change));
    const previous = this.tasks.get(change.taskId)?.record.status ?? null;
    const applied = movesForward(previous, change.status);
    if (!current) {
      return Promise.resolve({ applied, previous });
    }
    if (applied) {
      const { record } = current;
      record.status = change.status;
      record.updatedAt = change.at;
      record.failError = change.failError ?? record.failError;
      record.duration = change.duration ?? record.duration;
      record.retry = change.retry ?? record.retry;
      record.runAt = change.runAt ?? record.runAt;
      if (change.status === 'scheduled' && change.runAt) {
        this.schedule.set(change.taskId, change.runAt.getTime());
      } else if (previous === 'scheduled') {
        this.schedule.delete(change.taskId);
        this.claims.delete(change.taskId);
      }
    }
    this.tasks.set(change.taskId, current);
    return Promise.resolve({ applied, previous });
  }

  get(taskId: string): Promise<TaskRecord | null> {
    return Promise.resolve(this.tasks.get(taskId)?.record ?? null);
  }

  load(taskId: string): Promise<StoredTask | null> {
    return Promise.resolve(this.tasks.get(taskId) ?? null);
  }

  claimDue(now: Date, limit: number, leaseMs: number): Promise<string[]> {
    for (const [id, until] of this.claims) {
      if (until <= now.getTime()) {
        this.claims.delete(id);
        this.schedule.set(id, now.getTime());
      }
    }
    const due = [...this.schedule]
      .filter(([, at]) => at <= now.getTime())
      .sort((a, b) => a[1] - b[1])
      .slice(0, limit)
      .map(([id]) => id);
    for (const id of due) {
      this.schedule.delete(id);
      this.claims.set(id, now.getTime() + leaseMs);
    }
    return Promise.resolve(due);
  }

  claim(taskId: string, now: Date, leaseMs: number): Promise<boolean> {
    if (!this.schedule.delete(taskId)) return Promise.resolve(false);
    this.claims.set(taskId, now.getTime() + leaseMs);
    return Promise.resolve(true);
  }

  release(taskId: string): Promise<void> {
    this.claims.delete(taskId);
    return Promise.resolve();
  }

  statuses(taskId: string): string[] {
    return this.changes.filter((change) => change.taskId === taskId).map((change) => change.status);
  }
}

function stored(task: TaskEnvelope, change: TaskStatusChange): StoredTask {
  const { payload, timeout: _timeout, backoff: _backoff, ...info } = task;
  let decoded: unknown;
  try {
    decoded = decodePayload(payload);
  } catch {
    decoded = payload.body;
  }
  return {
    task,
    record: {
      ...info,
      retry: task.retry ?? 0,
      payload: decoded,
      status: change.status,
      failError: null,
      duration: null,
      runAt: null,
      updatedAt: change.at,
    },
  };
}
