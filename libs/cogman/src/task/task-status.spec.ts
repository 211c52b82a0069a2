import { isFinished, movesForward, TASK_STATUSES, type TaskStatus } from './task-status';

describe('task status order', () => {
  const order: TaskStatus[] = ['initiated', 'queued', 'in_progress'];
  const finished: TaskStatus[] = ['retry', 'success', 'failed', 'cancelled'];

  it('treats initiated and scheduled as the same first step', () => {
    expect(movesForward('initiated', 'scheduled')).toBe(false);
    expect(movesForward('scheduled', 'initiated')).toBe(false);
    expect(movesForward('scheduled', 'queued')).toBe(true);
    expect(movesForward('scheduled', 'cancelled')).toBe(true);
  });

  it('moves forward along initiated → queued → in_progress → a finished status', () => {
    for (const [i, status] of order.entries()) {
      for (const later of [...order.slice(i + 1), ...finished]) {
        expect(movesForward(status, later)).toBe(true);
        expect(movesForward(later, status)).toBe(false);
      }
    }
  });

  it('never replaces a finished status, not even by another one', () => {
    for (const current of finished) {
      for (const next of TASK_STATUSES) expect(movesForward(current, next)).toBe(false);
      expect(isFinished(current)).toBe(true);
    }
  });

  it('accepts any status for a new record, and not the same status twice', () => {
    for (const status of TASK_STATUSES) {
      expect(movesForward(null, status)).toBe(true);
      expect(movesForward(status, status)).toBe(false);
    }
    expect(order.some(isFinished)).toBe(false);
    expect(isFinished(null)).toBe(false);
  });
});
