import { DiscoveryService } from '@nestjs/core';
import type { TaskEventType } from '../task';

/** Which events a method marked with `@OnTaskEvent` receives. */
export interface OnTaskEventOptions {
  /** Only the events of tasks of this name (or these names). Default: every task. */
  name?: string | string[];
}

/** What `@OnTaskEvent` stores on the method. */
export interface TaskEventListenerMetadata extends OnTaskEventOptions {
  events: TaskEventType[];
}

/** Discoverable marker of event listener methods (found by `TaskEventExplorer`). */
export const TaskEventMarker = DiscoveryService.createDecorator<TaskEventListenerMetadata>();

/**
 * Calls the method with each `TaskEvent` of these types that happens in this worker process
 * (`@OnTaskEvent('completed')`, `@OnTaskEvent(['failed', 'dead-lettered'], { name: 'email' })`).
 * On a method of any singleton provider. The listener runs after the task's outcome is recorded
 * (or, for `started` and `progress`, beside the handler); it is not awaited, and an error it
 * throws or rejects with is logged and changes nothing of the task.
 */
export function OnTaskEvent(
  event: TaskEventType | TaskEventType[],
  options: OnTaskEventOptions = {},
): MethodDecorator {
  return TaskEventMarker({ ...options, events: Array.isArray(event) ? event : [event] });
}
