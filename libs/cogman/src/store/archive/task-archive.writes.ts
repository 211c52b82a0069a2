import type { AnyBulkWriteOperation } from 'mongoose';
import {
  BINARY_CONTENT_TYPE,
  TASK_STATUS_RANK,
  type TaskEnvelope,
  type TaskStatus,
} from '../../task';
import type { TaskStatusChange } from '../task-log.store';
import type { TaskDocument } from './task.schema';

/** What a batch does to one task: its changes, in arrival order, reduced to those that may apply. */
export interface TaskChangePlan {
  taskId: string;
  /** Describes a document created by this batch: the first change that carries the attempt. */
  first: TaskStatusChange;
  actions: TaskChangeAction[];
}

export interface TaskChangeAction {
  change: TaskStatusChange;
  rank: number;
  /** Sets the status (the change may move the task forward). */
  status: boolean;
  /** Sets the lease (the change carries one). */
  lease: boolean;
}

/**
 * Groups a batch by task, keeping each task's order. A status change whose rank is not above an
 * earlier change of the same batch can never apply (the earlier one either applied or found a
 * status at least as far), so it is left out; leases are always kept.
 */
export function planTaskChanges(changes: readonly TaskStatusChange[]): TaskChangePlan[] {
  const plans = new Map<string, TaskChangePlan & { top: number }>();
  for (const change of changes) {
    let plan = plans.get(change.taskId);
    if (!plan) {
      plan = { taskId: change.taskId, first: change, actions: [], top: 0 };
      plans.set(change.taskId, plan);
    } else if (!plan.first.task && change.task) {
      plan.first = { ...plan.first, task: change.task };
    }
    const rank = TASK_STATUS_RANK[change.status];
    const status = rank > plan.top;
    if (status) plan.top = rank;
    const lease = change.lease !== undefined;
    if (status || lease) plan.actions.push({ change, rank, status, lease });
  }
  return [...plans.values()].map(({ top: _top, ...plan }) => plan);
}

/** Where the task stood before a batch, as far as the writer knows. */
export interface StoredTaskState {
  rank: number;
  /** Whether the document has the attempt's description (a later status may come first). */
  described: boolean;
}

/**
 * Operations of a batch on a server that applies a conditional update atomically (MongoDB): the
 * rank guard is in each filter, so a change never moves a task backwards whatever other
 * processes write at the same moment. First an upsert that only fills a new document, then one
 * guarded update per change. Every operation is idempotent, so a batch can be sent again.
 */
export function guardedOperations(plan: TaskChangePlan): AnyBulkWriteOperation<TaskDocument>[] {
  const operations: AnyBulkWriteOperation<TaskDocument>[] = [insertion(plan)];
  if (plan.first.task) {
    // A document a later status created first (a worker's change can overtake its producer's)
    // gets the description it lacks, whatever its status: like HSETNX in the Redis log.
    operations.push({
      updateOne: {
        filter: { _id: plan.taskId, name: { $exists: false } },
        update: { $set: describeFields(plan.first.task) },
      },
    });
  }
  for (const action of plan.actions) {
    if (action.status) {
      operations.push({
        updateOne: {
          filter: { _id: plan.taskId, status_rank: { $lt: action.rank } },
          update: { $set: statusFields(action.change) },
        },
      });
    }
    if (action.lease) {
      operations.push({
        updateOne: {
          filter: { _id: plan.taskId, status_rank: { $lte: action.rank } },
          update: { $set: leaseFields(action.change) },
        },
      });
    }
  }
  return operations;
}

/**
 * The operation of a batch on a server whose updates are neither atomic nor cheap (FerretDB 1.x
 * reads, then replaces the document, and its SQLite backend finds even an `_id` by scanning the
 * table): the rank guard is applied here, against the state read just before, and the task's
 * changes are merged into one operation: an insert for a new document (cheap: no lookup), else
 * one update by `_id`. This keeps out-of-order changes in their place (a late `queued` never
 * overwrites `success`); it cannot order two processes writing one task at the same instant,
 * which such a server cannot do either way. An insert that meets a document another process
 * created meanwhile fails on the duplicate key, and the batch is read and written again.
 * Null when nothing applies.
 */
export function checkedOperation(
  plan: TaskChangePlan,
  stored: StoredTaskState | null,
): AnyBulkWriteOperation<TaskDocument> | null {
  const set: Partial<TaskDocument> = {};
  let rank = stored?.rank ?? 0;
  let changed = false;
  if (stored && !stored.described && plan.first.task) {
    // Created first by a later status (a worker's change can overtake its producer's).
    Object.assign(set, describeFields(plan.first.task));
    changed = true;
  }
  for (const action of plan.actions) {
    if (action.status && action.rank > rank) {
      rank = action.rank;
      Object.assign(set, statusFields(action.change));
      changed = true;
    }
    if (action.lease && rank <= action.rank) {
      Object.assign(set, leaseFields(action.change));
      changed = true;
    }
  }
  if (!stored) {
    return {
      insertOne: {
        document: { _id: plan.taskId, ...describeOrMinimal(plan), ...set } as TaskDocument,
      },
    };
  }
  return changed ? { updateOne: { filter: { _id: plan.taskId }, update: { $set: set } } } : null;
}

/**
 * Creates the document if it does not exist, with rank 0 so that the first status update
 * applies. An existing document is left as it is.
 */
function insertion(plan: TaskChangePlan): AnyBulkWriteOperation<TaskDocument> {
  const { first } = plan;
  return {
    updateOne: {
      filter: { _id: plan.taskId },
      update: {
        $setOnInsert: {
          ...describeOrMinimal(plan),
          status: first.status,
          status_rank: 0,
          updated_at: first.at,
        },
      },
      upsert: true,
    },
  };
}

/** What describes the attempt, or only its id and date when no change of the batch carries it. */
function describeOrMinimal(plan: TaskChangePlan): Partial<TaskDocument> {
  const { first } = plan;
  return first.task ? describeFields(first.task) : { task_id: plan.taskId, created_at: first.at };
}

/** The fields that describe an attempt; they never change once written. */
export function describeFields(task: TaskEnvelope): Partial<TaskDocument> {
  const fields: Partial<TaskDocument> = {
    task_id: task.taskId,
    name: task.name,
    original_task_id: task.originalTaskId,
    primary_key: task.primaryKey,
    attempt: task.attempt,
    priority: task.priority,
    payload: task.payload.body,
    payload_type: task.payload.contentType === BINARY_CONTENT_TYPE ? 'binary' : 'json',
    headers: Object.entries(task.headers).map(([name, value]) => ({ name, value })),
    created_at: task.createdAt,
  };
  // Settings given at send time; where absent, the handler's apply.
  if (task.retry !== undefined) fields.retry = task.retry;
  if (task.timeout !== undefined) fields.timeout = task.timeout;
  if (task.backoff !== undefined) fields.backoff = task.backoff;
  return fields;
}

/** What a status change sets; fields it does not carry keep their value, as in Redis. */
export function statusFields(change: TaskStatusChange): Partial<TaskDocument> {
  const fields: Partial<TaskDocument> = {
    status: change.status,
    status_rank: rankOf(change.status),
    updated_at: change.at,
  };
  if (change.failError !== undefined) fields.fail_error = change.failError;
  if (change.duration !== undefined) fields.duration = change.duration;
  if (change.result !== undefined) {
    fields.result = change.result.body;
    fields.result_type = change.result.contentType === BINARY_CONTENT_TYPE ? 'binary' : 'json';
  }
  if (change.resultError !== undefined) fields.result_error = change.resultError;
  if (change.progress !== undefined) fields.progress = change.progress;
  if (change.runAt !== undefined) fields.run_at = change.runAt;
  if (change.startedAt !== undefined) fields.started_at = change.startedAt;
  // The retries that apply, once a worker knows them.
  if (change.retry !== undefined) fields.retry = change.retry;
  return fields;
}

function leaseFields(change: TaskStatusChange): Partial<TaskDocument> {
  return { owner: change.lease!.owner, lease_until: change.lease!.until };
}

function rankOf(status: TaskStatus): number {
  return TASK_STATUS_RANK[status];
}
