import { TaskInvalidError } from '../errors';
import {
  BINARY_CONTENT_TYPE,
  decodePayload,
  encodePayload,
  type EncodedPayload,
} from './task-message';

/** What a worker records of a handler's return value. */
export type RecordedResult =
  /** Nothing to record: the handler returned `undefined`. */
  | { result?: undefined; resultError?: undefined }
  | { result: EncodedPayload; resultError?: undefined }
  /** The value could not be recorded (too big, or not JSON): why, instead of the value. */
  | { result?: undefined; resultError: string };

/**
 * A handler's return value as it is recorded with its `success`: JSON text, or a Buffer's bytes,
 * up to `maxSize` bytes. A bigger one is not cut: the record says why it holds no result.
 */
export function recordResult(value: unknown, maxSize: number): RecordedResult {
  if (value === undefined) return {};
  let result: EncodedPayload;
  try {
    result = encodePayload(value);
  } catch (error) {
    const reason = error instanceof TaskInvalidError ? error.reason : String(error);
    return { resultError: `the result ${reason}: not recorded` };
  }
  const size = result.body.length;
  if (size > maxSize) {
    const kind = result.contentType === BINARY_CONTENT_TYPE ? 'Buffer' : 'JSON';
    return {
      resultError: `the result (${size} bytes of ${kind}) is larger than resultMaxSize (${maxSize} bytes): not recorded`,
    };
  }
  return { result };
}

/** A recorded result as the handler returned it (a Buffer, or the JSON value). */
export function readResult(result: EncodedPayload): unknown {
  try {
    return decodePayload(result);
  } catch {
    return result.body;
  }
}
