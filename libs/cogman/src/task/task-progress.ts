import { TaskInvalidError } from '../errors';

/** Largest progress value, as JSON (a progress report is a number or a small object). */
export const MAX_PROGRESS_SIZE = 4096;

/** A progress value as it is recorded (JSON text); throws `TaskInvalidError` for a bad one. */
export function progressText(value: unknown): string {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0 || value > 100) {
      throw new TaskInvalidError('progress', 'must be a number from 0 to 100, or a JSON object');
    }
    return String(value);
  }
  if (typeof value !== 'object' || value === null || Buffer.isBuffer(value)) {
    throw new TaskInvalidError('progress', 'must be a number from 0 to 100, or a JSON object');
  }
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    throw new TaskInvalidError('progress', `cannot be serialised to JSON: ${String(error)}`);
  }
  if (text === undefined || Buffer.byteLength(text) > MAX_PROGRESS_SIZE) {
    throw new TaskInvalidError('progress', `must be at most ${MAX_PROGRESS_SIZE} bytes of JSON`);
  }
  return text;
}
