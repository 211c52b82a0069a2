import { Logger } from '@nestjs/common';
import type { TaskEvent, TaskInfo } from '../task';
import { TaskEvents } from './task-events';

const task = { name: 'email', taskId: 't1', originalTaskId: 't1', attempt: 1 } as TaskInfo;
const completed: TaskEvent = { type: 'completed', task, result: 1, duration: 2 };

describe('TaskEvents', () => {
  let errors: string[];

  beforeEach(() => {
    errors = [];
    jest.spyOn(Logger.prototype, 'error').mockImplementation((message: unknown) => {
      errors.push(String(message));
    });
  });

  afterEach(() => jest.restoreAllMocks());

  it('listens to nothing until a listener or a subscriber comes, and again once they leave', () => {
    const events = new TaskEvents();
    expect(events.listening).toBe(false);
    const off = events.on({ events: new Set(['completed']), source: 'A.on', call: () => {} });
    expect(events.listening).toBe(true);
    off();
    expect(events.listening).toBe(false);
    const subscription = events.events$.subscribe(() => {});
    expect(events.listening).toBe(true);
    subscription.unsubscribe();
    expect(events.listening).toBe(false);
  });

  it('logs a listener that throws or rejects, and still calls the others', async () => {
    const events = new TaskEvents();
    const calls: string[] = [];
    events.on({
      events: new Set(['completed']),
      source: 'Thrower.on',
      call: () => {
        throw new Error('sync');
      },
    });
    events.on({
      events: new Set(['completed']),
      source: 'Rejecter.on',
      call: () => Promise.reject(new Error('async')),
    });
    events.on({
      events: new Set(['completed']),
      source: 'Good.on',
      call: (event) => calls.push(event.type),
    });
    const streamed: TaskEvent[] = [];
    const subscription = events.events$.subscribe((event) => streamed.push(event));
    expect(() => events.emit(completed)).not.toThrow();
    await new Promise((resolve) => setImmediate(resolve));
    subscription.unsubscribe();
    expect(calls).toEqual(['completed']);
    expect(streamed).toEqual([completed]);
    expect(errors).toHaveLength(2);
    expect(errors[0]).toMatch(/^The completed listener Thrower.on failed for task t1: Error: sync/);
    expect(errors[1]).toMatch(
      /^The completed listener Rejecter.on failed for task t1: Error: async/,
    );
  });
});
