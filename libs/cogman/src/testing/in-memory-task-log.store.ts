import type {
  AttemptState,
  StoredTask,
  TaskLogStore,
  TaskStatusChange,
  TaskStatusResult,
} from '../store/task-log.store';
import {
  decodePayload,
  isFinished,
  movesForward,
  readResult,
  type TaskEnvelope,
  type TaskRecord,
} from '../task';

/** A task log in memory with the same rules as the Redis one, for unit specs. */
export class InMemoryTaskLogStore implements TaskLogStore {
  readonly tasks = new Map<string, StoredTask>();
  readonly changes: TaskStatusChange[] = [];
  /** Scheduled attempt id → due time (ms); claimed ones → lease end. */
  readonly schedule = new Map<string, number>();
  readonly claims = new Map<string, number>();
  available = true;
  /** Bump it to stand for a reconnection (after which Redis may have lost its data). */
  connections = 1;
  /** Called when a finished status applies to an attempt (what waits for results follow). */
  onFinished?: (taskId: string) => void;
  private readonly undescribed = new Set<string>();
  private readonly redeliveries = new Map<string, number>();

  record(change: TaskStatusChange): Promise<TaskStatusResult> {
    this.changes.push(change);
    if (change.unlessCancelled && change.unlessCancelled !== change.taskId) {
      if (this.tasks.get(change.unlessCancelled)?.record.status === 'cancelled') {
        return Promise.resolve({ applied: false, previous: 'cancelled' });
      }
    }
    const existing = this.tasks.get(change.taskId);
    const previous = existing?.record.status ?? null;
    const applied = movesForward(previous, change.status);
    // Like the Redis store: a change without the attempt still makes a record, undescribed.
    const current =
      existing && !this.undescribed.has(change.taskId)
        ? existing
        : change.task
          ? stored(change.task, existing?.record ?? change)
          : (existing ?? stored(placeholder(change.taskId), change));
    if (change.task) this.undescribed.delete(change.taskId);
    else if (!existing) this.undescribed.add(change.taskId);
    if (applied) {
      const { record } = current;
      record.status = change.status;
      record.updatedAt = change.at;
      record.failError = change.failError ?? record.failError;
      record.duration = change.duration ?? record.duration;
      record.startedAt = change.startedAt ?? record.startedAt;
      record.retry = change.retry ?? record.retry;
      record.runAt = change.runAt ?? record.runAt;
      if (change.result !== undefined) record.result = readResult(change.result);
      if (change.resultError !== undefined) record.resultError = change.resultError;
      if (change.progress !== undefined) record.progress = JSON.parse(change.progress) as unknown;
      if (change.status === 'scheduled' && change.runAt) {
        this.schedule.set(change.taskId, change.runAt.getTime());
      } else if (previous === 'scheduled') {
        this.schedule.delete(change.taskId);
        this.claims.delete(change.taskId);
      }
    }
    this.tasks.set(change.taskId, current);
    if (applied && isFinished(change.status)) this.onFinished?.(change.taskId);
    return Promise.resolve({ applied, previous, described: !this.undescribed.has(change.taskId) });
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

  inspect(taskId: string, { redelivered }: { redelivered: boolean }): Promise<AttemptState> {
    const redeliveries = (this.redeliveries.get(taskId) ?? 0) + (redelivered ? 1 : 0);
    this.redeliveries.set(taskId, redeliveries);
    const stored = this.tasks.get(taskId);
    return Promise.resolve({
      status: stored?.record.status ?? null,
      described: stored !== undefined && !this.undescribed.has(taskId),
      redeliveries,
    });
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

function placeholder(taskId: string): TaskEnvelope {
  return {
    taskId,
    name: '',
    originalTaskId: taskId,
    primaryKey: null,
    attempt: 1,
    priority: 'low',
    headers: {},
    createdAt: new Date(),
    payload: { contentType: 'application/json', body: Buffer.from('null') },
  };
}

/** A record of `task`, keeping the status (and its fields) of `from`. */
function stored(
  task: TaskEnvelope,
  from: Pick<TaskRecord, 'status'> &
    Partial<Pick<TaskRecord, 'failError' | 'duration' | 'runAt'>> & {
      at?: Date;
      updatedAt?: Date;
      startedAt?: Date | null;
    },
): StoredTask {
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
      status: from.status,
      failError: from.failError ?? null,
      duration: from.duration ?? null,
      startedAt: from.startedAt ?? null,
      runAt: from.runAt ?? null,
      updatedAt: from.updatedAt ?? from.at ?? new Date(),
    },
  };
}
