import type { ArchiveIndex } from './task.schema';

/** An index as `listIndexes` describes it. */
export interface ExistingIndex {
  name: string;
  key: Record<string, unknown>;
  unique?: boolean;
  expireAfterSeconds?: number;
}

/** What to do so that a collection has the indexes Cogman needs. */
export type IndexAction =
  | { kind: 'create'; index: ArchiveIndex }
  /** A TTL index exists with another lifetime: change it in place (`collMod`). */
  | { kind: 'retime'; name: string; from: number; to: number }
  /** Something else holds the key or the name; Cogman leaves it alone and says so. */
  | { kind: 'conflict'; index: ArchiveIndex; existing: ExistingIndex; reason: string };

/**
 * Compares the indexes a collection has with those Cogman needs. An index that exists with the
 * same key is kept, whatever its name; nothing is ever dropped (the Go library dropped and
 * recreated its TTL index on every connection, leaving a window with none, and the last process
 * to connect decided the lifetime).
 */
export function planIndexes(
  existing: readonly ExistingIndex[],
  desired: readonly ArchiveIndex[],
): IndexAction[] {
  const actions: IndexAction[] = [];
  for (const index of desired) {
    const same = existing.find((candidate) => sameKey(candidate.key, index.key));
    if (!same) {
      const named = existing.find((candidate) => candidate.name === index.options.name);
      actions.push(
        named
          ? {
              kind: 'conflict',
              index,
              existing: named,
              reason: 'its name is used by another index',
            }
          : { kind: 'create', index },
      );
      continue;
    }
    if (Boolean(index.options.unique) !== Boolean(same.unique)) {
      const reason = index.options.unique ? 'it is not unique' : 'it is unique';
      actions.push({ kind: 'conflict', index, existing: same, reason });
      continue;
    }
    const want = index.options.expireAfterSeconds;
    const have = same.expireAfterSeconds;
    if (want === undefined && have !== undefined) {
      actions.push({ kind: 'conflict', index, existing: same, reason: 'it is a TTL index' });
    } else if (want !== undefined && have === undefined) {
      actions.push({ kind: 'conflict', index, existing: same, reason: 'it is not a TTL index' });
    } else if (want !== undefined && have !== undefined && Number(have) !== want) {
      actions.push({ kind: 'retime', name: same.name, from: Number(have), to: want });
    }
  }
  return actions;
}

/** Whether the collection has a TTL index on `created_at` (whatever its lifetime). */
export function hasTtlIndex(existing: readonly ExistingIndex[]): boolean {
  return existing.some(
    (index) => index.expireAfterSeconds !== undefined && sameKey(index.key, { created_at: 1 }),
  );
}

/** Same fields in the same order and directions (numbers may come back as other BSON types). */
function sameKey(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const left = Object.entries(a);
  const right = Object.entries(b);
  return (
    left.length === right.length &&
    left.every(([field, direction], i) => {
      const [otherField, otherDirection] = right[i];
      return field === otherField && Number(direction) === Number(otherDirection);
    })
  );
}
