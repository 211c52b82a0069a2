import { Transform } from 'class-transformer';

/** Task ids: UUIDs (Cogman's and the Go library's), or any id of this safe form. */
export const TASK_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
/** Page size of a listing when `limit` is not given. */
export const DEFAULT_LIST_LIMIT = 50;
/** Most buckets a count may ask for. */
export const MAX_COUNT_BUCKETS = 1000;
/** Buckets of a count when `buckets` is not given. */
export const DEFAULT_COUNT_BUCKETS = 24;
/** Range of a count when `from` is not given: the day before `to`. */
export const DEFAULT_COUNT_RANGE = 24 * 60 * 60 * 1000;

/**
 * A whole number written in decimal digits becomes a number; anything else (an array, an object,
 * `1e3`, ` 5`) is left as it is, for the validators to reject.
 */
export function IntegerText(): PropertyDecorator {
  return Transform(({ value }: { value: unknown }) =>
    typeof value === 'string' && /^[0-9]{1,15}$/.test(value) ? Number(value) : value,
  );
}

/** The value as the client sent it, untouched by class-transformer (payloads, headers). */
export function Raw(): PropertyDecorator {
  return Transform(({ obj, key }: { obj: Record<string, unknown>; key: string }) =>
    Object.prototype.hasOwnProperty.call(obj, key) ? obj[key] : undefined,
  );
}

/** `a,b` or `a&a=b` (strings) become a list; anything else is left for the validators. */
export function CommaList(): PropertyDecorator {
  return Transform(({ value }: { value: unknown }) => {
    if (typeof value === 'string') return value.split(',');
    if (Array.isArray(value) && value.every((item) => typeof item === 'string')) {
      return value.flatMap((item: string) => item.split(','));
    }
    return value;
  });
}
