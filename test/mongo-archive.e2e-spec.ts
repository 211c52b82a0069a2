import type { mongo } from 'mongoose';
import { buildTask } from '../libs/cogman/src/task';
import { TASK_LIST_MAX_LIMIT } from '../libs/cogman/src/store/task-archive';
import type { TaskStatusChange } from '../libs/cogman/src/store/task-log.store';
import { TASK_INDEXES } from '../libs/cogman/src/store/archive/task.schema';
import {
  TASK_STATUS_RANK,
  TASK_STATUSES,
  type TaskEnvelope,
  type TaskStatus,
} from '../libs/cogman/src/task';
import { startArchive, type OpenArchive } from './support/archive';
import { dropDatabase, mongoUri, openMongo } from './support/mongo';
import { uniqueNamespace } from './support/services';
import { waitFor } from './support/wait';

const PATH: TaskStatus[] = ['initiated', 'queued', 'in_progress', 'success'];

/** The status Redis would end with after these changes, in this order. */
function expectedStatus(order: TaskStatus[]): TaskStatus {
  let current: TaskStatus | null = null;
  for (const status of order) {
    if (current === null || TASK_STATUS_RANK[status] > TASK_STATUS_RANK[current]) current = status;
  }
  return current!;
}

function change(task: TaskEnvelope, status: TaskStatus, extra: Partial<TaskStatusChange> = {}) {
  return { taskId: task.taskId, status, at: new Date(), task, ...extra };
}

describe('MongoTaskArchive on a MongoDB-compatible server (FerretDB)', () => {
  const databases: string[] = [];
  const opened: OpenArchive[] = [];
  let client: mongo.MongoClient;

  const database = (label: string) => {
    const name = uniqueNamespace(label);
    databases.push(name);
    return name;
  };
  const open = async (...args: Parameters<typeof startArchive>) => {
    const archive = startArchive(...args);
    opened.push(archive);
    await waitFor('the archive to connect', () => archive.archive.connected);
    return archive;
  };

  beforeAll(async () => {
    client = await openMongo();
  });

  afterAll(async () => {
    for (const archive of opened) await archive.close();
    await client?.close();
    for (const name of databases) await dropDatabase(name);
  });

  describe('indexes', () => {
    it('creates its indexes once, never dropping one, and sweeps expired tasks where TTL indexes are missing', async () => {
      const db = database('indexes');
      const { archive, logs } = await open(mongoUri(db), { mongoTtl: 1_500 });
      const tasks = client.db(db).collection('tasks');
      const names = TASK_INDEXES.map((index) => index.options.name);
      const indexes = await waitFor('the indexes', async () => {
        const list = await tasks.listIndexes().toArray();
        return names.every((name) => list.some((index) => index.name === name)) ? list : null;
      });
      expect(indexes.find((index) => index.name === 'task_id_unique')).toMatchObject({
        key: { task_id: 1 },
        unique: true,
      });
      expect(indexes.find((index) => index.name === 'status_created_at')?.key).toEqual({
        status: 1,
        created_at: -1,
      });
      // FerretDB 1.24 has no TTL indexes: Cogman says so once and deletes expired tasks itself.
      await waitFor('the TTL warning', () => logs.find('warn', 'no TTL indexes').length === 1);

      const old = buildTask({ name: 'old' }).task;
      await archive.write(change(old, 'success'));
      expect(await archive.get(old.taskId)).not.toBeNull();
      await waitFor('the expired task to be swept', async () => !(await archive.get(old.taskId)), {
        timeout: 20_000,
      });
    });
  });

  describe.each(['guarded', 'checked'] as const)('writes (%s)', (writes) => {
    let archive: OpenArchive['archive'];
    let db: string;

    beforeAll(async () => {
      db = database(`writes-${writes}`);
      ({ archive } = await open(mongoUri(db), {}, writes));
    });

    it('keeps the furthest status of every attempt whatever order its changes arrive in', async () => {
      const tasks = Array.from(
        { length: 150 },
        (_, i) =>
          buildTask({ name: 'race', payload: { i }, priority: i % 2 ? 'high' : 'low' }).task,
      );
      const orders = tasks.map(() =>
        [...PATH, 'failed' as TaskStatus].sort(() => Math.random() - 0.5),
      );
      // Half the tasks get all their changes at once (one batch), half one change per round
      // (a batch per round), each round's writes all at once.
      const half = tasks.length / 2;
      await Promise.all(
        tasks
          .slice(0, half)
          .flatMap((task, i) => orders[i].map((status) => archive.write(change(task, status)))),
      );
      for (let round = 0; round < PATH.length + 1; round++) {
        await Promise.all(
          tasks.slice(half).map((task, i) => archive.write(change(task, orders[half + i][round]))),
        );
      }
      for (const [i, task] of tasks.entries()) {
        const record = await archive.get(task.taskId);
        expect(record).toMatchObject({
          taskId: task.taskId,
          name: 'race',
          payload: { i },
          status: expectedStatus(orders[i]),
          priority: task.priority,
        });
      }
    });

    it('never lets a late change move a task back, across writers and batches', async () => {
      const other = await open(mongoUri(db), {}, writes);
      const task = buildTask({ name: 'late', primaryKey: 'pk-late' }).task;
      await archive.write(change(task, 'initiated'));
      await other.archive.write(change(task, 'in_progress'));
      await other.archive.write(change(task, 'success', { duration: 12.5 }));
      // The producer's `queued` arrives last (the Go library's D8 race, in MongoDB).
      await archive.write(change(task, 'queued'));
      await archive.write({
        taskId: task.taskId,
        status: 'failed',
        at: new Date(),
        failError: 'x',
      });
      expect(await archive.get(task.taskId)).toMatchObject({
        status: 'success',
        duration: 12.5,
        failError: null,
        primaryKey: 'pk-late',
      });
      const doc = await client
        .db(db)
        .collection('tasks')
        .findOne({ _id: task.taskId as never });
      expect(doc).toMatchObject({ status: 'success', status_rank: TASK_STATUS_RANK.success });
    });
  });

  describe('records', () => {
    let archive: OpenArchive['archive'];
    let db: string;

    beforeAll(async () => {
      db = database('records');
      ({ archive } = await open(mongoUri(db)));
    });

    it('stores the attempt as sent, with the Go field names, and reads it back', async () => {
      const binary = buildTask({
        name: 'resize',
        payload: Buffer.from([0, 1, 2, 255]),
        priority: 'high',
        retry: 3,
        primaryKey: 'image-7',
        headers: { 'x.trace': 'abc', $weird: 'yes', plain: 'v' },
      }).task;
      const lease = { owner: 'producer-1', until: new Date(Date.now() + 60_000) };
      await archive.write(change(binary, 'initiated', { lease }));
      const record = await archive.get(binary.taskId);
      expect(record).toMatchObject({
        taskId: binary.taskId,
        name: 'resize',
        originalTaskId: binary.taskId,
        primaryKey: 'image-7',
        retry: 3,
        attempt: 1,
        priority: 'high',
        headers: { 'x.trace': 'abc', $weird: 'yes', plain: 'v' },
        status: 'initiated',
        createdAt: binary.createdAt,
      });
      expect(record!.payload).toEqual(Buffer.from([0, 1, 2, 255]));

      const doc = await client
        .db(db)
        .collection('tasks')
        .findOne({ _id: binary.taskId as never });
      expect(doc).toMatchObject({
        task_id: binary.taskId,
        original_task_id: binary.taskId,
        primary_key: 'image-7',
        payload_type: 'binary',
        status: 'initiated',
        status_rank: 1,
        owner: 'producer-1',
        lease_until: lease.until,
        created_at: binary.createdAt,
      });
      expect(Buffer.from(doc!.payload.buffer)).toEqual(Buffer.from([0, 1, 2, 255]));

      const runAt = new Date(Date.now() + 3_600_000);
      const json = buildTask({ name: 'later', payload: { n: [1, 'two', null] } }).task;
      await archive.write(change(json, 'scheduled', { runAt }));
      expect(await archive.get(json.taskId)).toMatchObject({
        status: 'scheduled',
        payload: { n: [1, 'two', null] },
        primaryKey: null,
      });
      expect(
        await client
          .db(db)
          .collection('tasks')
          .findOne({ _id: json.taskId as never }),
      ).toMatchObject({ run_at: runAt, payload_type: 'json' });
      expect(await archive.get('no-such-task')).toBeNull();
    });

    it('gives up a record the server refuses without holding back the others', async () => {
      // Over the 16 MiB limit of a document.
      const huge = buildTask({ name: 'huge', payload: Buffer.alloc(17 * 1024 * 1024) }).task;
      const small = buildTask({ name: 'small' }).task;
      const results = await Promise.allSettled([
        archive.write(change(huge, 'initiated')),
        archive.write(change(small, 'initiated')),
      ]);
      expect(results.map((result) => result.status)).toEqual(['rejected', 'fulfilled']);
      expect((results[0] as PromiseRejectedResult).reason).toMatchObject({
        code: 'COGMAN_ARCHIVE_RECORD_REFUSED',
        taskId: huge.taskId,
      });
      expect(await archive.get(small.taskId)).toMatchObject({ status: 'initiated' });
      expect(await archive.get(huge.taskId)).toBeNull();
      await archive.write(change(small, 'success'));
      expect(await archive.get(small.taskId)).toMatchObject({ status: 'success' });
    });
  });

  describe('listing and counting', () => {
    let archive: OpenArchive['archive'];
    const base = Date.UTC(2024, 0, 1);
    /** 60 attempts, one a minute, cycling through names, priorities, keys and statuses. */
    const statuses: TaskStatus[] = ['success', 'failed', 'queued'];
    const seeded: TaskEnvelope[] = [];

    beforeAll(async () => {
      ({ archive } = await open(mongoUri(database('listing'))));
      for (let i = 0; i < 60; i++) {
        const task = {
          ...buildTask({
            name: i % 2 ? 'email' : 'sms',
            priority: i % 3 ? 'low' : 'high',
            primaryKey: `user-${i % 4}`,
          }).task,
          // Two attempts share each minute, so that ties on the date are broken by id.
          createdAt: new Date(base + Math.floor(i / 2) * 60_000),
        };
        seeded.push(task);
      }
      await Promise.all(
        seeded.map((task, i) =>
          archive.write({ taskId: task.taskId, status: statuses[i % 3], at: new Date(), task }),
        ),
      );
    });

    const sortedIds = (order: 'asc' | 'desc', tasks = seeded) =>
      [...tasks]
        .sort(
          (a, b) =>
            a.createdAt.getTime() - b.createdAt.getTime() || a.taskId.localeCompare(b.taskId),
        )
        .map((task) => task.taskId)
        [order === 'asc' ? 'slice' : 'reverse']();

    it('pages through everything by cursor, newest first by default, with the total', async () => {
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await archive.list({ limit: 7, cursor });
        expect(page.total).toBe(60);
        expect(page.items.length).toBeLessThanOrEqual(7);
        seen.push(...page.items.map((item) => item.taskId));
        cursor = page.nextCursor ?? undefined;
        pages++;
      } while (cursor);
      expect(pages).toBe(9);
      expect(seen).toEqual(sortedIds('desc'));
    });

    it('sorts oldest first on request', async () => {
      const page = await archive.list({ limit: 60, order: 'asc' });
      expect(page.items.map((item) => item.taskId)).toEqual(sortedIds('asc'));
      expect(page.nextCursor).toBeNull();
    });

    it('filters by status, name, priority, primary key, original task and dates', async () => {
      const from = new Date(base + 10 * 60_000);
      const to = new Date(base + 20 * 60_000);
      const page = await archive.list({
        status: ['success', 'queued'],
        name: 'email',
        priority: 'low',
        from,
        to,
        limit: 100,
      });
      const expected = seeded.filter(
        (task, i) =>
          statuses[i % 3] !== 'failed' &&
          task.name === 'email' &&
          task.priority === 'low' &&
          task.createdAt >= from &&
          task.createdAt <= to,
      );
      expect(expected.length).toBeGreaterThan(0);
      expect(page.total).toBe(expected.length);
      expect(page.items.map((item) => item.taskId)).toEqual(sortedIds('desc', expected));

      const byKey = await archive.list({ primaryKey: 'user-3', limit: 100 });
      expect(byKey.total).toBe(15);
      expect(byKey.items.every((item) => item.primaryKey === 'user-3')).toBe(true);

      const one = seeded[5];
      const byOriginal = await archive.list({ originalTaskId: one.taskId, limit: 10 });
      expect(byOriginal.items.map((item) => item.taskId)).toEqual([one.taskId]);
    });

    it(`caps a page at ${TASK_LIST_MAX_LIMIT} items`, async () => {
      const page = await archive.list({ limit: 10_000 });
      expect(page.items).toHaveLength(60);
      const { archive: big } = await open(mongoUri(database('cap')));
      await Promise.all(
        Array.from({ length: TASK_LIST_MAX_LIMIT + 20 }, () => {
          const task = buildTask({ name: 'many' }).task;
          return big.write(change(task, 'queued'));
        }),
      );
      const capped = await big.list({ limit: 10_000 });
      expect(capped.items).toHaveLength(TASK_LIST_MAX_LIMIT);
      expect(capped.total).toBe(TASK_LIST_MAX_LIMIT + 20);
      expect(capped.nextCursor).not.toBeNull();
    });

    it('treats an operator in a filter as a plain value that matches nothing', async () => {
      const attempts: Record<string, unknown>[] = [
        { name: '{"$ne":1}' },
        { name: '$ne' },
        { primaryKey: '{"$gt":""}' },
        { originalTaskId: '{"$exists":true}' },
      ];
      for (const filter of attempts) {
        const page = await archive.list({ limit: 10, ...filter });
        expect(page).toEqual({ items: [], total: 0, nextCursor: null });
      }
      // An object instead of a string is refused, never sent as an operator.
      for (const filter of [
        { name: { $ne: 1 } },
        { primaryKey: { $gt: '' } },
        { status: { $ne: 'x' } },
      ]) {
        await expect(archive.list({ limit: 10, ...(filter as object) })).rejects.toMatchObject({
          code: 'COGMAN_TASK_QUERY_INVALID',
        });
      }
      await expect(archive.get({ $ne: 'x' } as never)).rejects.toMatchObject({
        code: 'COGMAN_TASK_QUERY_INVALID',
      });
      expect((await archive.list({ limit: 100 })).total).toBe(60);
    });

    it('counts each status over equal intervals', async () => {
      const from = new Date(base);
      const to = new Date(base + 30 * 60_000);
      const buckets = await archive.count({ from, to, buckets: 3 });
      expect(buckets.map((bucket) => [bucket.from, bucket.to])).toEqual([
        [from, new Date(base + 10 * 60_000)],
        [new Date(base + 10 * 60_000), new Date(base + 20 * 60_000)],
        [new Date(base + 20 * 60_000), to],
      ]);
      for (const [b, bucket] of buckets.entries()) {
        const inside = seeded
          .map((task, i) => ({ task, status: statuses[i % 3] }))
          .filter(({ task }) => task.createdAt >= bucket.from && task.createdAt < bucket.to);
        expect(bucket.total).toBe(inside.length);
        expect(bucket.total).toBe(20);
        for (const status of TASK_STATUSES) {
          expect([b, status, bucket.counts[status]]).toEqual([
            b,
            status,
            inside.filter((entry) => entry.status === status).length,
          ]);
        }
      }
      const emails = await archive.count({ from, to, buckets: 1, name: 'email' });
      expect(emails[0].total).toBe(30);
      const empty = await archive.count({ from: new Date(0), to: new Date(1000), buckets: 2 });
      expect(empty.map((bucket) => bucket.total)).toEqual([0, 0]);
    });
  });

  it('pages through the scheduled tasks in id order, each ready to schedule again', async () => {
    const { archive } = await open(mongoUri(database('scheduled')));
    const runAt = new Date(Date.now() + 60_000);
    const scheduled = Array.from(
      { length: 7 },
      (_, i) => buildTask({ name: 'later', payload: { i }, retry: 2 }).task,
    );
    await Promise.all(scheduled.map((task) => archive.write(change(task, 'scheduled', { runAt }))));
    // Not scheduled (any more): published, or cancelled.
    const published = buildTask({ name: 'later' }).task;
    await archive.write(change(published, 'scheduled', { runAt }));
    await archive.write(change(published, 'queued'));
    const cancelled = buildTask({ name: 'later' }).task;
    await archive.write(change(cancelled, 'scheduled', { runAt }));
    await archive.write(change(cancelled, 'cancelled'));

    const pages: string[][] = [];
    let after: string | null = null;
    for (;;) {
      const page = await archive.scheduledTasks(after, 3);
      pages.push(page.map(({ task }) => task.taskId));
      for (const { task, runAt: due } of page) {
        expect(task).toEqual(scheduled.find((sent) => sent.taskId === task.taskId));
        expect(due).toEqual(runAt);
      }
      if (page.length < 3) break;
      after = page[page.length - 1].task.taskId;
    }
    expect(pages.map((page) => page.length)).toEqual([3, 3, 1]);
    expect(pages.flat()).toEqual(scheduled.map((task) => task.taskId).sort());
  });

  describe('leases', () => {
    let a: OpenArchive['archive'];
    let b: OpenArchive['archive'];
    let leasesDb: string;

    beforeAll(async () => {
      leasesDb = database('leases');
      ({ archive: a } = await open(mongoUri(leasesDb)));
      ({ archive: b } = await open(mongoUri(leasesDb)));
    });

    it('lets two producers claiming at once take each orphan exactly once', async () => {
      const expired = new Date(Date.now() - 1_000);
      const orphans = Array.from(
        { length: 40 },
        (_, i) => buildTask({ name: 'orphan', payload: { i }, headers: { h: String(i) } }).task,
      );
      await Promise.all(
        orphans.map((task) =>
          a.write(change(task, 'initiated', { lease: { owner: 'crashed', until: expired } })),
        ),
      );
      // Not orphans: published, leased to a live producer, or recently sent without a lease.
      const queued = buildTask({ name: 'fine' }).task;
      await a.write(change(queued, 'queued'));
      const held = buildTask({ name: 'held' }).task;
      await a.write(
        change(held, 'initiated', {
          lease: { owner: 'alive', until: new Date(Date.now() + 60_000) },
        }),
      );
      const fresh = buildTask({ name: 'fresh' }).task;
      await a.write(change(fresh, 'initiated'));

      const claims = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          (i % 2 ? a : b).claimOrphans(`claimer-${i}`, 30_000, 50),
        ),
      );
      const claimed = claims.flat();
      const ids = claimed.map((task) => task.taskId);
      expect(new Set(ids).size).toBe(ids.length);
      expect([...ids].sort()).toEqual(orphans.map((task) => task.taskId).sort());
      // What is returned is ready to publish again: the envelope with its encoded payload.
      const first = claimed.find((task) => task.taskId === orphans[0].taskId)!;
      expect(first).toEqual(orphans[0]);

      // Claimed now, so nobody can take them again until their new lease lapses.
      expect(await a.claimOrphans('late', 30_000, 50)).toEqual([]);
    });

    it('never takes a task recorded initiated without a lease (its sender answered for it)', async () => {
      const stuck = buildTask({ name: 'stuck' }).task;
      await a.write({ ...change(stuck, 'initiated'), at: new Date(Date.now() - 10_000) });
      expect(await b.claimOrphans('p', 60_000, 10)).toEqual([]);
      expect(await b.claimOrphans('p', 5_000, 10)).toEqual([]);
    });

    it('renews many leases at once', async () => {
      // More than FerretDB can take in one update command (about 100).
      const held = Array.from({ length: 150 }, () => buildTask({ name: 'held-many' }).task);
      const until = new Date(Date.now() + 60_000);
      await Promise.all(
        held.map((task) => a.write(change(task, 'initiated', { lease: { owner: 'many', until } }))),
      );
      const ids = held.map((task) => task.taskId);
      expect(await a.renewLease('many', ids, 120_000)).toEqual(ids);
    });

    it('renews only the leases a producer still holds', async () => {
      const mine = buildTask({ name: 'mine' }).task;
      const lapsed = buildTask({ name: 'lapsed' }).task;
      const taken = buildTask({ name: 'taken' }).task;
      const published = buildTask({ name: 'published' }).task;
      const soon = new Date(Date.now() + 60_000);
      const past = new Date(Date.now() - 1_000);
      await a.write(change(mine, 'initiated', { lease: { owner: 'me', until: soon } }));
      await a.write(change(taken, 'initiated', { lease: { owner: 'me', until: past } }));
      await a.write(change(published, 'initiated', { lease: { owner: 'me', until: soon } }));
      await a.write(change(published, 'queued'));
      // Another producer takes `taken` over after its lease lapsed.
      const claimed = await b.claimOrphans('thief', 30_000, 50);
      expect(claimed.map((task) => task.taskId)).toContain(taken.taskId);
      // `lapsed` lapsed too, but nobody has claimed it: it is still this producer's.
      await a.write(change(lapsed, 'initiated', { lease: { owner: 'me', until: past } }));

      const unknown = buildTask({ name: 'unknown' }).task;
      const ids = [mine, lapsed, taken, published, unknown].map((task) => task.taskId);
      const before = Date.now();
      expect(await a.renewLease('me', ids, 45_000)).toEqual([mine.taskId, lapsed.taskId]);
      const tasks = client.db(leasesDb).collection('tasks');
      for (const task of [mine, lapsed]) {
        const doc = await tasks.findOne({ _id: task.taskId as never });
        expect(doc!.owner).toBe('me');
        expect((doc!.lease_until as Date).getTime()).toBeGreaterThanOrEqual(before + 45_000);
      }
      expect(await tasks.findOne({ _id: taken.taskId as never })).toMatchObject({ owner: 'thief' });
      // The renewed leases keep others away.
      const after = await b.claimOrphans('thief', 30_000, 50);
      expect(after.map((task) => task.taskId)).not.toContain(lapsed.taskId);
    });
  });
});
