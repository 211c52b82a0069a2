import type { DeadLetterReason } from './task-message';
import type { TaskInfo } from './task.interfaces';

/** What happens to a task in a worker, as `@OnTaskEvent` listeners and `CogmanWorker.events$` see it. */
export const TASK_EVENT_TYPES = [
  'started',
  'progress',
  'completed',
  'failed',
  'retrying',
  'cancelled',
  'dead-lettered',
] as const;

export type TaskEventType = (typeof TASK_EVENT_TYPES)[number];

/** One event of one attempt in this worker process (no network involved). */
export type TaskEvent =
  /** The handler is about to run. */
  | { type: 'started'; task: TaskInfo }
  /** The handler reported progress (`ctx.progress(value)`); every call, not only the writes. */
  | { type: 'progress'; task: TaskInfo; progress: unknown }
  /** The handler succeeded; `result` is what it returned. */
  | { type: 'completed'; task: TaskInfo; result: unknown; duration: number }
  /** The last attempt failed: no retry follows. */
  | { type: 'failed'; task: TaskInfo; error: unknown; duration: number }
  /** The attempt failed and `nextTaskId` runs after `wait` ms. */
  | {
      type: 'retrying';
      task: TaskInfo;
      error: unknown;
      duration: number;
      nextTaskId: string;
      wait: number;
    }
  /** The task was cancelled while its handler ran. */
  | { type: 'cancelled'; task: TaskInfo; duration: number }
  /** The message went to the dead-letter queue; `task` is null when it could not be decoded. */
  | {
      type: 'dead-lettered';
      task: TaskInfo | null;
      taskId: string | null;
      reason: DeadLetterReason;
      detail: string;
    };

/** The event of one type. */
export type TaskEventOf<T extends TaskEventType> = Extract<TaskEvent, { type: T }>;
