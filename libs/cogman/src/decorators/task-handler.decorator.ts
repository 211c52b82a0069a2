import { DiscoveryService } from '@nestjs/core';

/** Options of one task handler. */
// Filled in as handler-level settings (retry policy, timeout) are added.
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface TaskHandlerOptions {}

/** What `@TaskHandler` stores on the class. */
export interface TaskHandlerMetadata extends TaskHandlerOptions {
  name: string;
}

/** Discoverable marker of handler classes (found by `TaskHandlerExplorer`). */
export const TaskHandlerMarker = DiscoveryService.createDecorator<TaskHandlerMetadata>();

/**
 * Marks a provider as the handler of the task `name`. The class implements `CogmanTaskHandler`;
 * its `handle(payload, ctx)` runs once per task. Request-scoped dependencies are resolved per task.
 */
export function TaskHandler(name: string, options: TaskHandlerOptions = {}): ClassDecorator {
  return TaskHandlerMarker({ ...options, name });
}
