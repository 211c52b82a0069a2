import { TaskQueryInvalidError } from '../../errors';
import { BINARY_CONTENT_TYPE, JSON_CONTENT_TYPE } from '../../task';
import { TASK_LIST_MAX_LIMIT, type TaskListQuery } from '../task-archive';
import {
  bucketBounds,
  bucketFilter,
  decodeCursor,
  encodeCursor,
  pageFilter,
  planList,
  toTaskEnvelope,
  toTaskRecord,
  TASK_COUNT_MAX_BUCKETS,
} from './task-archive.query';

function invalid(run: () => unknown): TaskQueryInvalidError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(TaskQueryInvalidError);
    return error as TaskQueryInvalidError;
  }
  throw new Error('expected the query to be rejected');
}

describe('planList', () => {
  it('turns each filter into an exact match on its field', () => {
    const from = new Date('2024-01-01T00:00:00Z');
    const to = new Date('2024-01-02T00:00:00Z');
    const plan = planList({
      status: ['success', 'failed', 'success'],
      name: 'email',
      priority: 'high',
      primaryKey: 'user-42',
      originalTaskId: 'abc',
      from,
      to,
      limit: 20,
    });
    expect(plan).toEqual({
      filter: {
        status: { $in: ['success', 'failed'] },
        name: { $eq: 'email' },
        priority: { $eq: 'high' },
        primary_key: { $eq: 'user-42' },
        original_task_id: { $eq: 'abc' },
        created_at: { $gte: from, $lte: to },
      },
      direction: -1,
      limit: 20,
      after: null,
    });
  });

  it('lists everything, newest first, when no filter is given', () => {
    expect(planList({ limit: 5 })).toEqual({ filter: {}, direction: -1, limit: 5, after: null });
    expect(planList({ limit: 5, order: 'asc', status: [] }).direction).toBe(1);
  });

  it('matches error text as text, ignoring case, with every pattern character escaped', () => {
    const plan = planList({ error: 'a.b*(c)[d]^$|\\', limit: 1 });
    expect(plan.filter).toEqual({
      fail_error: { $regex: 'a\\.b\\*\\(c\\)\\[d\\]\\^\\$\\|\\\\', $options: 'i' },
    });
    const pattern = new RegExp((plan.filter.fail_error as { $regex: string }).$regex, 'i');
    expect(pattern.test('failed: A.B*(C)[D]^$|\\ at line 3')).toBe(true);
    expect(pattern.test('aXb')).toBe(false);
    expect(() => planList({ error: '', limit: 1 })).toThrow(/error/);
  });

  it(`caps the page size at ${TASK_LIST_MAX_LIMIT}`, () => {
    expect(planList({ limit: 1_000_000 }).limit).toBe(TASK_LIST_MAX_LIMIT);
  });

  it('keeps a string that looks like an operator a plain value', () => {
    const plan = planList({ name: '{"$ne":1}', primaryKey: '$where', limit: 1 });
    expect(plan.filter).toEqual({
      name: { $eq: '{"$ne":1}' },
      primary_key: { $eq: '$where' },
    });
  });

  it.each<[string, Partial<Record<keyof TaskListQuery, unknown>>]>([
    ['name', { name: { $ne: 1 } }],
    ['name', { name: ['a'] }],
    ['name', { name: '' }],
    ['primaryKey', { primaryKey: { $gt: '' } }],
    ['originalTaskId', { originalTaskId: 42 }],
    ['status', { status: 'success' }],
    ['status', { status: [{ $ne: 'x' }] }],
    ['status', { status: ['done'] }],
    ['priority', { priority: { $in: ['high'] } }],
    ['from', { from: '2024-01-01' }],
    ['to', { to: new Date('nonsense') }],
    ['from', { from: new Date(2), to: new Date(1) }],
    ['order', { order: -1 }],
    ['limit', { limit: 0 }],
    ['limit', { limit: 2.5 }],
    ['limit', { limit: '10' }],
    ['cursor', { cursor: 'not-a-cursor' }],
    ['cursor', { cursor: { $gt: 1 } }],
  ])('rejects a bad %s (an object never becomes an operator)', (field, query) => {
    const error = invalid(() => planList({ limit: 10, ...query } as TaskListQuery));
    expect(error.field).toBe(field);
    expect(error.code).toBe('COGMAN_TASK_QUERY_INVALID');
  });

  it('rejects something that is not a query', () => {
    expect(invalid(() => planList(null as unknown as TaskListQuery)).field).toBe('query');
  });
});

describe('cursors', () => {
  it('round-trip, and are opaque URL-safe text', () => {
    const cursor = encodeCursor({ createdAt: 1_700_000_000_123, taskId: 'a/b+c?' });
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor(cursor)).toEqual({ createdAt: 1_700_000_000_123, taskId: 'a/b+c?' });
  });

  it.each([
    '',
    '!!!',
    Buffer.from('{"a":1}').toString('base64url'),
    Buffer.from('[1]').toString('base64url'),
    Buffer.from('[1.5,"x"]').toString('base64url'),
    Buffer.from('["1","x"]').toString('base64url'),
    Buffer.from('[1,""]').toString('base64url'),
    Buffer.from('[1,{"$ne":null}]').toString('base64url'),
  ])('rejects %j', (cursor) => {
    expect(invalid(() => decodeCursor(cursor)).field).toBe('cursor');
  });

  it('start the next page strictly after the last item, in the order of the listing', () => {
    const after = { createdAt: 1000, taskId: 't-9' };
    const at = new Date(1000);
    expect(pageFilter({ filter: { name: { $eq: 'x' } }, direction: -1, limit: 1, after })).toEqual({
      $and: [
        { name: { $eq: 'x' } },
        {
          $or: [{ created_at: { $lt: at } }, { created_at: { $eq: at }, task_id: { $lt: 't-9' } }],
        },
      ],
    });
    const ascending = pageFilter({ filter: {}, direction: 1, limit: 1, after });
    expect(JSON.stringify(ascending)).toContain('$gt');
    expect(pageFilter({ filter: { a: 1 }, direction: 1, limit: 1, after: null })).toEqual({ a: 1 });
  });
});

describe('bucketBounds', () => {
  const from = new Date('2024-01-01T00:00:00.000Z');

  it('splits [from, to) into contiguous intervals of equal length', () => {
    const to = new Date(from.getTime() + 24 * 3600_000);
    const buckets = bucketBounds({ from, to, buckets: 24 });
    expect(buckets).toHaveLength(24);
    expect(buckets[0].from).toEqual(from);
    expect(buckets[23].to).toEqual(to);
    for (let i = 0; i < 24; i++) {
      expect(buckets[i].to.getTime() - buckets[i].from.getTime()).toBe(3600_000);
      if (i > 0) expect(buckets[i].from).toEqual(buckets[i - 1].to);
    }
  });

  it('spreads a remainder so that lengths differ by at most 1 ms', () => {
    const buckets = bucketBounds({ from, to: new Date(from.getTime() + 10), buckets: 3 });
    const lengths = buckets.map((bucket) => bucket.to.getTime() - bucket.from.getTime());
    expect(lengths.reduce((a, b) => a + b)).toBe(10);
    expect(Math.max(...lengths) - Math.min(...lengths)).toBeLessThanOrEqual(1);
  });

  it.each([
    ['from', { from: 'yesterday', to: new Date(), buckets: 1 }],
    ['to', { from, to: from, buckets: 1 }],
    ['to', { from, to: new Date(from.getTime() - 1), buckets: 1 }],
    ['buckets', { from, to: new Date(from.getTime() + 1000), buckets: 0 }],
    ['buckets', { from, to: new Date(from.getTime() + 1e9), buckets: TASK_COUNT_MAX_BUCKETS + 1 }],
    ['buckets', { from, to: new Date(from.getTime() + 1000), buckets: 1.5 }],
    ['buckets', { from, to: new Date(from.getTime() + 5), buckets: 6 }],
  ])('rejects a bad %s', (field, query) => {
    expect(invalid(() => bucketBounds(query as never)).field).toBe(field);
  });

  it('filters a bucket on [from, to) and an exact name', () => {
    const bucket = { from, to: new Date(from.getTime() + 1) };
    expect(bucketFilter(bucket, 'email')).toEqual({
      created_at: { $gte: bucket.from, $lt: bucket.to },
      name: { $eq: 'email' },
    });
    expect(invalid(() => bucketFilter(bucket, { $ne: 'x' })).field).toBe('name');
  });
});

describe('reading documents back', () => {
  const base = {
    _id: 't1',
    task_id: 't1',
    name: 'email',
    original_task_id: 't0',
    primary_key: 'pk',
    retry: 2,
    attempt: 2,
    priority: 'high' as const,
    status: 'failed' as const,
    status_rank: 4,
    fail_error: 'boom',
    duration: 3.5,
    headers: [{ name: 'a.b', value: 'c' }],
    created_at: new Date(1000),
    updated_at: new Date(2000),
  };

  it('gives the record of an attempt with its JSON payload decoded', () => {
    const record = toTaskRecord({
      ...base,
      payload: Buffer.from('{"to":"x"}'),
      payload_type: 'json',
    });
    expect(record).toEqual({
      taskId: 't1',
      name: 'email',
      originalTaskId: 't0',
      primaryKey: 'pk',
      retry: 2,
      attempt: 2,
      priority: 'high',
      headers: { 'a.b': 'c' },
      createdAt: new Date(1000),
      updatedAt: new Date(2000),
      payload: { to: 'x' },
      status: 'failed',
      failError: 'boom',
      duration: 3.5,
      runAt: null,
      startedAt: null,
    });
  });

  it('gives binary payloads (Buffer or BSON Binary) back as Buffers', () => {
    const bytes = Buffer.from([0, 1, 255]);
    const binary = {
      _bsontype: 'Binary',
      length: () => 3,
      read: (position: number, length: number) => new Uint8Array(bytes).subarray(position, length),
    };
    for (const payload of [bytes, binary]) {
      const envelope = toTaskEnvelope({ ...base, payload, payload_type: 'binary' });
      expect(envelope.payload).toEqual({ contentType: BINARY_CONTENT_TYPE, body: bytes });
    }
    const json = toTaskEnvelope({ ...base, payload: Buffer.from('1'), payload_type: 'json' });
    expect(json.payload.contentType).toBe(JSON_CONTENT_TYPE);
  });

  it('ignores a document without a valid status', () => {
    expect(toTaskRecord({ _id: 'x', status: 'nope' as never })).toBeNull();
  });
});
