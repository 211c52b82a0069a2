import { Injectable, OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import {
  TaskEventMarker,
  type TaskEventListenerMetadata,
} from '../decorators/task-event.decorator';
import { TaskEventListenerInvalidError } from '../errors';
import { TASK_EVENT_TYPES, type TaskEvent, type TaskEventType } from '../task';
import { TaskEvents } from '../worker/task-events';

/**
 * Finds the methods marked with `@OnTaskEvent` on every provider at module init and adds them
 * to the worker's listeners. No I/O; a listener on a provider that is not a singleton, or of an
 * unknown event, fails the boot.
 */
@Injectable()
export class TaskEventExplorer implements OnModuleInit {
  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly events: TaskEvents,
  ) {}

  onModuleInit(): void {
    const seen = new Set<unknown>();
    for (const wrapper of this.discovery.getProviders()) {
      const instance: unknown = wrapper.instance;
      const metatype: unknown = wrapper.metatype;
      if (!metatype || typeof metatype !== 'function' || !metatype.prototype) continue;
      const prototype = metatype.prototype as object;
      const methods = this.scanner
        .getAllMethodNames(prototype)
        .filter((method) => listenerOf(prototype, method) !== undefined);
      if (methods.length === 0) continue;
      const className = (metatype as { name?: string }).name ?? 'provider';
      if (!wrapper.isDependencyTreeStatic() || wrapper.isTransient || !instance) {
        throw new TaskEventListenerInvalidError(
          className,
          'a task event listener must be a method of a singleton provider',
        );
      }
      // One instance provided in several modules (or exported) listens once.
      if (seen.has(instance)) continue;
      seen.add(instance);
      for (const method of methods) {
        const metadata = listenerOf(prototype, method)!;
        const unknown = metadata.events.find(
          (event) => !(TASK_EVENT_TYPES as readonly string[]).includes(event),
        );
        if (unknown !== undefined) {
          throw new TaskEventListenerInvalidError(
            `${className}.${method}`,
            `unknown event "${String(unknown)}" (expected one of ${TASK_EVENT_TYPES.join(', ')})`,
          );
        }
        const names = metadata.name === undefined ? undefined : [metadata.name].flat();
        const target = instance as Record<string, (event: TaskEvent) => unknown>;
        this.events.on({
          events: new Set<TaskEventType>(metadata.events),
          names: names && new Set(names),
          source: `${className}.${method}`,
          call: (event) => target[method](event),
        });
      }
    }
  }
}

/** The `@OnTaskEvent` metadata of a method (read from the class: the instance may not exist). */
function listenerOf(prototype: object, method: string): TaskEventListenerMetadata | undefined {
  const fn = (prototype as Record<string, unknown>)[method];
  if (typeof fn !== 'function') return undefined;
  return Reflect.getMetadata(TaskEventMarker.KEY, fn) as TaskEventListenerMetadata | undefined;
}
