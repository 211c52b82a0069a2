import { Injectable } from '@nestjs/common';
import type { Observable } from 'rxjs';
import { TaskConsumer } from './task.consumer';
import type { TaskHandlerOptions } from '../decorators/task-handler.decorator';
import { TaskHandlerInvalidError } from '../errors';
import type {
  CogmanTaskHandler,
  TaskEvent,
  TaskHandlerFunction,
  TaskName,
  TaskPayloadOf,
} from '../task';
import { TaskEvents } from './task-events';
import { TaskHandlerRegistry } from './task-handler.registry';

/** The worker of this process: register handlers in code, see what it runs. */
@Injectable()
export class CogmanWorker {
  constructor(
    private readonly registry: TaskHandlerRegistry,
    private readonly consumer: TaskConsumer,
    private readonly events: TaskEvents,
  ) {}

  /**
   * The task events of this process (the ones `@OnTaskEvent` receives), as a stream: subscribe
   * to see those that happen from then on. An error thrown by a subscriber is rxjs's to report;
   * it changes nothing of the task.
   */
  get events$(): Observable<TaskEvent> {
    return this.events.events$;
  }

  /**
   * Registers the handler of a task without a decorator (like the Go `server.Register`).
   * Register before the application starts (in `onModuleInit`), so no task arrives first. When
   * `CogmanTaskMap` declares task names, `name` is one of them and the handler takes its payload.
   */
  register<P = unknown, N extends TaskName = TaskName>(
    name: N,
    handler: CogmanTaskHandler<TaskPayloadOf<N, P>> | TaskHandlerFunction<TaskPayloadOf<N, P>>,
    options: TaskHandlerOptions = {},
  ): void {
    const instance: CogmanTaskHandler | undefined =
      typeof handler === 'function' ? { handle: handler } : handler;
    if (typeof instance?.handle !== 'function') {
      throw new TaskHandlerInvalidError(
        name,
        'expected a function or an object with handle(payload, ctx)',
      );
    }
    const source =
      typeof handler === 'function'
        ? `function ${handler.name || '(anonymous)'}`
        : handler.constructor.name;
    this.registry.add({ name, options, source, resolve: () => instance });
  }

  /** Names of the tasks this process can run. */
  get handlers(): string[] {
    return this.registry.names();
  }

  /** Whether this process is consuming tasks. */
  get running(): boolean {
    return this.consumer.running;
  }

  /** Number of tasks running in this process now. */
  get activeCount(): number {
    return this.consumer.activeCount;
  }
}
