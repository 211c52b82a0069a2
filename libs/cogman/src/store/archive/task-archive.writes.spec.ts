import { buildTask } from '../../task';
import type { TaskStatus } from '../../task';
import type { TaskStatusChange } from '../task-log.store';
import {
  checkedOperation,
  describeFields,
  guardedOperations,
  planTaskChanges,
  statusFields,
} from './task-archive.writes';

const task = buildTask({ name: 'email', payload: { to: 'x' }, headers: { 'x.trace': '1' } }).task;
const at = (ms: number) => new Date(ms);
const change = (status: TaskStatus, ms: number, extra: Partial<TaskStatusChange> = {}) => ({
  taskId: task.taskId,
  status,
  at: at(ms),
  ...extra,
});

describe('planTaskChanges', () => {
  it('groups by task in arrival order, keeping only changes that can still move it forward', () => {
    const other = buildTask({ name: 'other' }).task;
    const plans = planTaskChanges([
      change('initiated', 1, { task }),
      { taskId: other.taskId, status: 'queued', at: at(2) },
      change('in_progress', 3),
      change('queued', 4), // below in_progress: can never apply after it
      change('success', 5, { duration: 7 }),
      change('failed', 6), // same rank as success: the first one wins
    ]);
    expect(plans.map((plan) => plan.taskId)).toEqual([task.taskId, other.taskId]);
    expect(plans[0].actions.map((action) => action.change.status)).toEqual([
      'initiated',
      'in_progress',
      'success',
    ]);
    expect(plans[0].first.task).toBe(task);
  });

  it('describes a new document from any change of the batch that carries the attempt', () => {
    const [plan] = planTaskChanges([change('queued', 1), change('in_progress', 2, { task })]);
    expect(plan.first).toMatchObject({ status: 'queued', task });
  });

  it('keeps every lease, even on a change that does not move the task', () => {
    const lease = { owner: 'p1', until: at(100) };
    const [plan] = planTaskChanges([
      change('queued', 1, { task }),
      change('initiated', 2, { lease }),
    ]);
    expect(plan.actions.map(({ status, lease }) => ({ status, lease }))).toEqual([
      { status: true, lease: false },
      { status: false, lease: true },
    ]);
  });
});

describe('guardedOperations', () => {
  it('fills a new document, then applies each change only over a lower rank', () => {
    const lease = { owner: 'p1', until: at(100) };
    const [plan] = planTaskChanges([
      change('initiated', 1, { task, lease }),
      change('success', 2, { duration: 7 }),
    ]);
    expect(guardedOperations(plan)).toEqual([
      {
        updateOne: {
          filter: { _id: task.taskId },
          update: {
            $setOnInsert: {
              ...describeFields(task),
              status: 'initiated',
              status_rank: 0,
              updated_at: at(1),
            },
          },
          upsert: true,
        },
      },
      {
        // A document a later status created first gets the description it lacks.
        updateOne: {
          filter: { _id: task.taskId, name: { $exists: false } },
          update: { $set: describeFields(task) },
        },
      },
      {
        updateOne: {
          filter: { _id: task.taskId, status_rank: { $lt: 1 } },
          update: { $set: { status: 'initiated', status_rank: 1, updated_at: at(1) } },
        },
      },
      {
        updateOne: {
          filter: { _id: task.taskId, status_rank: { $lte: 1 } },
          update: { $set: { owner: 'p1', lease_until: at(100) } },
        },
      },
      {
        updateOne: {
          filter: { _id: task.taskId, status_rank: { $lt: 4 } },
          update: { $set: { status: 'success', status_rank: 4, updated_at: at(2), duration: 7 } },
        },
      },
    ]);
  });

  it('creates a document with only its id and date when no change carries the attempt', () => {
    const [plan] = planTaskChanges([change('failed', 9, { failError: 'dead-lettered' })]);
    const [insert] = guardedOperations(plan);
    expect(insert).toEqual({
      updateOne: {
        filter: { _id: task.taskId },
        update: {
          $setOnInsert: {
            task_id: task.taskId,
            created_at: at(9),
            status: 'failed',
            status_rank: 0,
            updated_at: at(9),
          },
        },
        upsert: true,
      },
    });
  });
});

describe('checkedOperation', () => {
  it('describes a document a later status created first, though its status does not move', () => {
    const [plan] = planTaskChanges([change('queued', 1, { task })]);
    expect(checkedOperation(plan, { rank: 3, described: false })).toEqual({
      updateOne: { filter: { _id: task.taskId }, update: { $set: describeFields(task) } },
    });
    expect(checkedOperation(plan, { rank: 3, described: true })).toBeNull();
  });

  it('merges the changes that move the task past its stored rank into one update by _id', () => {
    const [plan] = planTaskChanges([
      change('queued', 1),
      change('in_progress', 2),
      change('retry', 3, { failError: 'boom', duration: 4 }),
    ]);
    expect(checkedOperation(plan, { rank: 2, described: true })).toEqual({
      updateOne: {
        filter: { _id: task.taskId },
        update: {
          $set: {
            status: 'retry',
            status_rank: 4,
            updated_at: at(3),
            fail_error: 'boom',
            duration: 4,
          },
        },
      },
    });
  });

  it('writes nothing when the stored status is already as far (a late queued)', () => {
    const [plan] = planTaskChanges([change('queued', 1), change('in_progress', 2)]);
    expect(checkedOperation(plan, { rank: 4, described: true })).toBeNull();
  });

  it('inserts a missing document with what describes it and its status', () => {
    const runAt = at(50);
    const [plan] = planTaskChanges([change('scheduled', 1, { task, runAt }), change('queued', 2)]);
    expect(checkedOperation(plan, null)).toEqual({
      insertOne: {
        document: {
          _id: task.taskId,
          ...describeFields(task),
          status: 'queued',
          status_rank: 2,
          updated_at: at(2),
          run_at: runAt,
        },
      },
    });
  });

  it('sets a lease while the task has not gone past the change that carries it', () => {
    const lease = { owner: 'p2', until: at(100) };
    const [plan] = planTaskChanges([change('initiated', 1, { lease })]);
    expect(checkedOperation(plan, { rank: 1, described: true })).toMatchObject({
      updateOne: { update: { $set: { owner: 'p2', lease_until: at(100) } } },
    });
    expect(checkedOperation(plan, { rank: 2, described: true })).toBeNull();
  });
});

describe('document fields', () => {
  it('describe an attempt with the Go field names, headers as name/value pairs', () => {
    const binary = buildTask({ name: 'raw', payload: Buffer.from([1, 2]), primaryKey: 'k' }).task;
    expect(describeFields(binary)).toEqual({
      task_id: binary.taskId,
      name: 'raw',
      original_task_id: binary.taskId,
      primary_key: 'k',
      attempt: 1,
      priority: 'low',
      payload: Buffer.from([1, 2]),
      payload_type: 'binary',
      headers: [],
      created_at: binary.createdAt,
    });
    expect(describeFields(task)).toMatchObject({
      payload_type: 'json',
      headers: [{ name: 'x.trace', value: '1' }],
    });
  });

  it('set only the status fields a change carries', () => {
    expect(statusFields(change('in_progress', 5))).toEqual({
      status: 'in_progress',
      status_rank: 3,
      updated_at: at(5),
    });
  });
});
