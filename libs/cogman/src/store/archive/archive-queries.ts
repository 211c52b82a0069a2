import { TaskQueryInvalidError } from '../../errors';
import { isTaskStatus, type TaskRecord } from '../../task';
import {
  TASK_LIST_MAX_LIMIT,
  type ScheduledTask,
  type TaskCountBucket,
  type TaskCountQuery,
  type TaskListPage,
  type TaskListQuery,
} from '../task-archive';
import { checkPositiveInteger, type ArchiveContext } from './archive.context';
import {
  bucketBounds,
  bucketFilter,
  emptyCounts,
  encodeCursor,
  pageFilter,
  planList,
  toTaskEnvelope,
  toTaskRecord,
  type StoredTaskDocument,
} from './task-archive.query';

/** Count buckets are aggregated this many at a time. */
const COUNT_CONCURRENCY = 4;

/** Reads of the archive: one task, pages of tasks, counts over time, the scheduled tasks. */
export class ArchiveQueries {
  constructor(private readonly context: ArchiveContext) {}

  async get(taskId: string): Promise<TaskRecord | null> {
    if (typeof taskId !== 'string' || taskId === '') {
      throw new TaskQueryInvalidError('taskId', 'must be a non-empty string');
    }
    this.context.assertAvailable();
    // A bare string (checked above): FerretDB looks `{ _id: <string> }` up without a scan, and
    // only that form.
    const doc = await this.context.tasks.findOne({ _id: taskId }).lean<StoredTaskDocument>();
    return doc ? toTaskRecord(doc) : null;
  }

  async list(query: TaskListQuery): Promise<TaskListPage> {
    const plan = planList(query);
    this.context.assertAvailable();
    const sort = { created_at: plan.direction, task_id: plan.direction };
    const [total, docs] = await Promise.all([
      this.context.tasks.countDocuments(plan.filter),
      this.context.tasks
        .find(pageFilter(plan))
        .sort(sort)
        .limit(plan.limit + 1)
        .lean<StoredTaskDocument[]>(),
    ]);
    const page = docs.slice(0, plan.limit);
    const last = page.at(-1);
    return {
      items: page.map(toTaskRecord).filter((record) => record !== null),
      total,
      nextCursor:
        docs.length > plan.limit && last?.created_at
          ? encodeCursor({ createdAt: last.created_at.getTime(), taskId: last.task_id ?? last._id })
          : null,
    };
  }

  async count(query: TaskCountQuery): Promise<TaskCountBucket[]> {
    const bounds = bucketBounds(query);
    const filters = bounds.map((bucket) => bucketFilter(bucket, query.name));
    this.context.assertAvailable();
    // One $match + $group per bucket: FerretDB 1.24 has neither $bucket nor the arithmetic
    // operators that would compute a bucket number in one pipeline.
    return mapLimit(bounds, COUNT_CONCURRENCY, async (bucket, i) => {
      const groups = await this.context.tasks.aggregate<{ _id: unknown; n: number }>([
        { $match: filters[i] },
        { $group: { _id: '$status', n: { $sum: 1 } } },
      ]);
      const counts = emptyCounts();
      let total = 0;
      for (const group of groups) {
        total += group.n;
        if (isTaskStatus(group._id)) counts[group._id] += group.n;
      }
      return { from: bucket.from, to: bucket.to, total, counts };
    });
  }

  /**
   * Tasks the archive holds as `scheduled`, in task id order after `after`: what the schedule in
   * Redis should hold, for restoring it after Redis lost its data.
   */
  async scheduledTasks(after: string | null, limit: number): Promise<ScheduledTask[]> {
    checkPositiveInteger('limit', limit, TASK_LIST_MAX_LIMIT);
    this.context.assertAvailable();
    const filter: Record<string, unknown> = { status: { $eq: 'scheduled' } };
    if (after !== null) filter._id = { $gt: String(after) };
    const docs = await this.context.tasks
      .find(filter)
      .sort({ _id: 1 })
      .limit(limit)
      .lean<StoredTaskDocument[]>();
    return docs.flatMap((doc) =>
      doc.run_at && doc.name !== undefined
        ? [{ task: toTaskEnvelope(doc), runAt: doc.run_at }]
        : [],
    );
  }
}

/** Maps with at most `limit` calls in flight, keeping the order. */
async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const work = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, work));
  return results;
}
