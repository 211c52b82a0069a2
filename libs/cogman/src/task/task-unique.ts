import { createHash } from 'node:crypto';
import type { TaskEnvelope } from './task-message';
import type { UniqueTaskOptions } from './task.interfaces';

/** Longest unique key, in bytes. */
const MAX_KEY_BYTES = 1024;

/** The first problem with a `unique` setting, as [field, reason], or null. */
export function uniqueProblem(unique: unknown): [field: string, reason: string] | null {
  if (unique === undefined || unique === false || unique === true) return null;
  if (typeof unique !== 'object' || unique === null || Array.isArray(unique)) {
    return ['unique', 'must be an object { key?, ttl? }, true or false'];
  }
  const { key, ttl, ...rest } = unique as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) return ['unique', `has an unknown field "${unknown[0]}"`];
  if (
    key !== undefined &&
    (typeof key !== 'string' || key === '' || Buffer.byteLength(key) > MAX_KEY_BYTES)
  ) {
    return ['unique.key', `must be a non-empty string of at most ${MAX_KEY_BYTES} bytes`];
  }
  if (ttl !== undefined && !(Number.isSafeInteger(ttl) && (ttl as number) > 0)) {
    return [
      'unique.ttl',
      `must be a whole number of milliseconds above 0, not ${JSON.stringify(ttl)}`,
    ];
  }
  return null;
}

/** A unique setting as given (`true` for the defaults), normalised; null when not unique. */
export function uniqueSetting(
  unique: UniqueTaskOptions | boolean | undefined,
): UniqueTaskOptions | null {
  if (unique === undefined || unique === false) return null;
  return unique === true ? {} : unique;
}

/** The key of a unique task (see `UniqueTaskOptions.key`). */
export function uniqueKeyOf(task: TaskEnvelope, unique: UniqueTaskOptions): string {
  if (unique.key !== undefined) return unique.key;
  if (task.primaryKey !== null) return `${task.name}:${task.primaryKey}`;
  const hash = createHash('sha256')
    .update(task.payload.contentType)
    .update('\0')
    .update(task.payload.body)
    .digest('hex');
  return `${task.name}:#${hash}`;
}
