import {
  TASK_STATUSES,
  envelopeOf,
  type TaskEnvelope,
  type TaskRecord,
  type TaskStatus,
} from '../task';
import { InMemoryTaskLogStore } from './in-memory-task-log.store';
import {
  TASK_LIST_MAX_LIMIT,
  type ScheduledTask,
  type TaskArchive,
  type TaskCountBucket,
  type TaskCountQuery,
  type TaskListPage,
  type TaskListQuery,
} from '../store/task-archive';
import type { TaskStatusChange } from '../store/task-log.store';

/**
 * The task archive in memory, for unit specs: records follow the log's rules (an in-memory log
 * underneath); listing filters, sorts (createdAt, then taskId), pages with a cursor and counts
 * the matches; counts split the range into equal buckets. `failWith` makes every call reject.
 */
export class InMemoryTaskArchive implements TaskArchive {
  private readonly log = new InMemoryTaskLogStore();
  /** When set, every read and write rejects with it (an unreachable archive). */
  failWith: Error | null = null;
  readonly queries: (TaskListQuery | TaskCountQuery)[] = [];

  get connected(): boolean {
    return this.failWith === null;
  }

  readonly backlog = 0;

  async write(change: TaskStatusChange): Promise<void> {
    this.check();
    await this.log.record(change);
  }

  /** Adds records as they are (for specs that need many tasks at given dates). */
  seed(...records: TaskRecord[]): void {
    for (const record of records) {
      const task = envelopeOf(record);
      this.log.tasks.set(record.taskId, { record: { ...record }, task });
    }
  }

  async get(taskId: string): Promise<TaskRecord | null> {
    this.check();
    return this.log.get(taskId);
  }

  async list(query: TaskListQuery): Promise<TaskListPage> {
    this.check();
    this.queries.push(query);
    const direction = query.order === 'asc' ? 1 : -1;
    const matches = this.records()
      .filter((record) => matchesList(record, query))
      .sort((a, b) => direction * compare(a, b));
    let start = 0;
    if (query.cursor !== undefined) {
      const [createdAt, taskId] = JSON.parse(Buffer.from(query.cursor, 'base64url').toString()) as [
        number,
        string,
      ];
      const after = { createdAt: new Date(createdAt), taskId } as TaskRecord;
      start = matches.findIndex((record) => direction * compare(record, after) > 0);
      if (start === -1) start = matches.length;
    }
    const limit = Math.min(query.limit, TASK_LIST_MAX_LIMIT);
    const items = matches.slice(start, start + limit);
    const last = items[items.length - 1];
    const more = start + limit < matches.length;
    await Promise.resolve();
    return {
      items,
      total: matches.length,
      nextCursor:
        more && last
          ? Buffer.from(JSON.stringify([last.createdAt.getTime(), last.taskId])).toString(
              'base64url',
            )
          : null,
    };
  }

  async count(query: TaskCountQuery): Promise<TaskCountBucket[]> {
    this.check();
    this.queries.push(query);
    const from = query.from.getTime();
    const span = query.to.getTime() - from;
    const edge = (i: number) => new Date(from + Math.floor((span * i) / query.buckets));
    const buckets = Array.from({ length: query.buckets }, (_, i) => ({
      from: edge(i),
      to: edge(i + 1),
      total: 0,
      counts: Object.fromEntries(TASK_STATUSES.map((s) => [s, 0])) as Record<TaskStatus, number>,
    }));
    for (const record of this.records()) {
      if (query.name !== undefined && record.name !== query.name) continue;
      const at = record.createdAt.getTime();
      const bucket = buckets.find((b) => at >= b.from.getTime() && at < b.to.getTime());
      if (!bucket) continue;
      bucket.total++;
      bucket.counts[record.status]++;
    }
    await Promise.resolve();
    return buckets;
  }

  claimOrphans(): Promise<TaskEnvelope[]> {
    return Promise.resolve([]);
  }

  async scheduledTasks(after: string | null, limit: number): Promise<ScheduledTask[]> {
    this.check();
    await Promise.resolve();
    return [...this.log.tasks.values()]
      .filter(({ record }) => record.status === 'scheduled' && record.runAt)
      .filter(({ record }) => after === null || record.taskId > after)
      .sort((a, b) => (a.record.taskId < b.record.taskId ? -1 : 1))
      .slice(0, limit)
      .map(({ record, task }) => ({ task, runAt: record.runAt! }));
  }

  renewLease(_owner: string, taskIds: string[]): Promise<string[]> {
    return Promise.resolve(taskIds);
  }

  start(): void {}

  close(): Promise<void> {
    return Promise.resolve();
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }

  private records(): TaskRecord[] {
    return [...this.log.tasks.values()].map(({ record }) => record);
  }

  private check(): void {
    if (this.failWith) throw this.failWith;
  }
}

function compare(a: TaskRecord, b: TaskRecord): number {
  const byDate = a.createdAt.getTime() - b.createdAt.getTime();
  return byDate !== 0 ? byDate : a.taskId < b.taskId ? -1 : a.taskId > b.taskId ? 1 : 0;
}

function matchesList(record: TaskRecord, query: TaskListQuery): boolean {
  const at = record.createdAt.getTime();
  return (
    (!query.status || query.status.includes(record.status)) &&
    (query.name === undefined || record.name === query.name) &&
    (query.priority === undefined || record.priority === query.priority) &&
    (query.primaryKey === undefined || record.primaryKey === query.primaryKey) &&
    (query.error === undefined ||
      (record.failError ?? '').toLowerCase().includes(query.error.toLowerCase())) &&
    (query.originalTaskId === undefined || record.originalTaskId === query.originalTaskId) &&
    (query.from === undefined || at >= query.from.getTime()) &&
    (query.to === undefined || at <= query.to.getTime())
  );
}
