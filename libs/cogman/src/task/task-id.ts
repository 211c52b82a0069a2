import { createHash, randomUUID } from 'node:crypto';

/** Id of a new task: a random UUID, as the Go library gives. */
export function newTaskId(): string {
  return randomUUID();
}

/** Name-based UUID namespace of retry attempts (RFC 9562 §5.5). */
const RETRY_NAMESPACE = Buffer.from('1f0c2a6e8b7d4c5fa3e9d2b6c4a8e7f1', 'hex');

/**
 * Id of a later attempt: a UUID v5 derived from the first attempt's id and the attempt number.
 * Publishing the same retry twice (a worker died between publishing it and acknowledging the
 * failed attempt) therefore yields one task, which runs once.
 */
export function retryTaskId(originalTaskId: string, attempt: number): string {
  const hash = createHash('sha1')
    .update(RETRY_NAMESPACE)
    .update(`${originalTaskId}#${attempt}`)
    .digest();
  hash[6] = (hash[6] & 0x0f) | 0x50;
  hash[8] = (hash[8] & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
