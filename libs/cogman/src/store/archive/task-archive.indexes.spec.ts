import { hasTtlIndex, planIndexes, type ExistingIndex } from './task-archive.indexes';
import { TASK_INDEXES, ttlIndex, ttlSeconds } from './task.schema';

const ID: ExistingIndex = { name: '_id_', key: { _id: 1 } };
const DAY = 24 * 3600_000;

describe('planIndexes', () => {
  const desired = [...TASK_INDEXES, ttlIndex(30 * DAY)];

  it('creates every index of a new collection', () => {
    expect(planIndexes([], desired)).toEqual(desired.map((index) => ({ kind: 'create', index })));
  });

  it('does nothing when every index exists, whatever its name or number types', () => {
    const existing: ExistingIndex[] = [
      ID,
      ...TASK_INDEXES.map((index, i) => ({
        name: `someone-else-${i}`,
        key: Object.fromEntries(Object.entries(index.key).map(([k, v]) => [k, v * 1.0])),
        unique: index.options.unique,
      })),
      { name: 'ttl', key: { created_at: 1 }, expireAfterSeconds: 2_592_000 },
    ];
    expect(planIndexes(existing, desired)).toEqual([]);
  });

  it('creates only what is missing', () => {
    const [first, ...rest] = desired;
    const existing = rest.map((index) => ({ ...index.options, key: index.key }));
    expect(planIndexes(existing, desired)).toEqual([{ kind: 'create', index: first }]);
  });

  it('changes the lifetime of a TTL index in place instead of dropping it', () => {
    const existing = [{ name: 'created_at_ttl', key: { created_at: 1 }, expireAfterSeconds: 60 }];
    expect(planIndexes(existing, [ttlIndex(7 * DAY)])).toEqual([
      { kind: 'retime', name: 'created_at_ttl', from: 60, to: 604_800 },
    ]);
  });

  it('leaves alone, and reports, an index that holds the key or the name differently', () => {
    const ttl = ttlIndex(DAY);
    const [unique] = TASK_INDEXES;
    const plain = TASK_INDEXES[1];
    const existing: ExistingIndex[] = [
      { name: 'mine', key: { created_at: 1 } },
      { name: 'task_id_1', key: { task_id: 1 } },
      { name: plain.options.name, key: { other: 1 } },
    ];
    expect(planIndexes(existing, [ttl, unique, plain])).toEqual([
      { kind: 'conflict', index: ttl, existing: existing[0], reason: 'it is not a TTL index' },
      { kind: 'conflict', index: unique, existing: existing[1], reason: 'it is not unique' },
      {
        kind: 'conflict',
        index: plain,
        existing: existing[2],
        reason: 'its name is used by another index',
      },
    ]);
  });

  it('treats a key with other directions or order as another index', () => {
    const existing = [{ name: 'x', key: { created_at: 1, status: 1 } }];
    const [, statusIndex] = TASK_INDEXES;
    expect(planIndexes(existing, [statusIndex])).toEqual([{ kind: 'create', index: statusIndex }]);
  });
});

describe('ttlSeconds', () => {
  it('rounds a partial second up (a TTL index counts whole seconds)', () => {
    expect(ttlSeconds(30 * DAY)).toBe(2_592_000);
    expect(ttlSeconds(1_500)).toBe(2);
  });
});

describe('hasTtlIndex', () => {
  it('is true only for a TTL index on created_at', () => {
    expect(hasTtlIndex([ID, { name: 'x', key: { created_at: 1 }, expireAfterSeconds: 5 }])).toBe(
      true,
    );
    expect(hasTtlIndex([{ name: 'x', key: { created_at: 1 } }])).toBe(false);
    expect(hasTtlIndex([{ name: 'x', key: { other: 1 }, expireAfterSeconds: 5 }])).toBe(false);
  });
});
