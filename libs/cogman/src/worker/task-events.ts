import { Injectable, Logger } from '@nestjs/common';
import { Observable, type Subscriber } from 'rxjs';
import type { TaskEvent, TaskEventType } from '../task';

/** A listener of task events, with what it listens to. */
export interface TaskEventListener {
  /** The event types it receives. */
  events: ReadonlySet<TaskEventType>;
  /** Only tasks of these names; every task when undefined. */
  names?: ReadonlySet<string>;
  /** Where it came from, for the log: `Class.method`. */
  source: string;
  call(event: TaskEvent): unknown;
}

/**
 * The task events of this worker process: `@OnTaskEvent` listeners and the subscribers of
 * `events$`. The executor asks `listening` before building an event, so a process where nobody
 * listens pays nothing per task. A listener's error (thrown, or a rejected promise) is logged
 * here, never reaching the task.
 */
@Injectable()
export class TaskEvents {
  private readonly logger = new Logger('Cogman:Events');
  private readonly listeners: TaskEventListener[] = [];
  private readonly subscribers = new Set<Subscriber<TaskEvent>>();

  /** Every event, as a stream (hot: a subscriber sees the events from its subscription on). */
  readonly events$ = new Observable<TaskEvent>((subscriber) => {
    this.subscribers.add(subscriber);
    return () => this.subscribers.delete(subscriber);
  });

  /** Whether any listener or subscriber would receive an event. */
  get listening(): boolean {
    return this.listeners.length > 0 || this.subscribers.size > 0;
  }

  /** Adds a listener; returns the function that removes it. */
  on(listener: TaskEventListener): () => void {
    this.listeners.push(listener);
    return () => {
      const index = this.listeners.indexOf(listener);
      if (index >= 0) this.listeners.splice(index, 1);
    };
  }

  emit(event: TaskEvent): void {
    const name = event.task?.name;
    for (const listener of this.listeners) {
      if (!listener.events.has(event.type)) continue;
      if (listener.names && (name === undefined || !listener.names.has(name))) continue;
      try {
        const returned = listener.call(event);
        if (isThenable(returned)) {
          returned.then(undefined, (error: unknown) => this.failed(listener.source, event, error));
        }
      } catch (error) {
        this.failed(listener.source, event, error);
      }
    }
    // rxjs reports an error thrown by a subscriber itself (config.onUnhandledError).
    for (const subscriber of this.subscribers) subscriber.next(event);
  }

  private failed(source: string, event: TaskEvent, error: unknown): void {
    const id = event.task?.taskId ?? (event.type === 'dead-lettered' ? event.taskId : null);
    this.logger.error(
      `The ${event.type} listener ${source} failed${id ? ` for task ${id}` : ''}: ${
        error instanceof Error ? (error.stack ?? error.message) : String(error)
      }`,
    );
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
