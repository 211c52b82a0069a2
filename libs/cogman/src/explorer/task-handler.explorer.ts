import { Inject, Injectable, OnModuleInit, Optional } from '@nestjs/common';
import { ContextIdFactory, DiscoveryService, ModuleRef } from '@nestjs/core';
import type { InstanceWrapper } from '@nestjs/core/injector/instance-wrapper';
import { TaskHandlerMarker } from '../decorators/task-handler.decorator';
import { TaskHandlerInvalidError } from '../errors';
import type { CogmanTaskHandler, TaskInfo } from '../task';
import { TaskHandlerRegistry } from '../worker/task-handler.registry';
import { TaskHandlerEnhancers } from './task-handler.enhancers';

/**
 * Finds the providers marked with `@TaskHandler` at module init and registers them. No I/O:
 * a wrong handler fails the boot here, before anything connects.
 */
@Injectable()
export class TaskHandlerExplorer implements OnModuleInit {
  constructor(
    private readonly discovery: DiscoveryService,
    private readonly moduleRef: ModuleRef,
    private readonly registry: TaskHandlerRegistry,
    @Optional()
    @Inject(TaskHandlerEnhancers)
    private readonly enhancers: TaskHandlerEnhancers | null = null,
  ) {}

  onModuleInit(): void {
    const seen = new Set<unknown>();
    for (const wrapper of this.discovery.getProviders({ metadataKey: TaskHandlerMarker.KEY })) {
      const metatype = wrapper.metatype as (new (...args: never[]) => unknown) | null;
      // One class provided in several modules is still one handler.
      if (!metatype || seen.has(metatype)) continue;
      seen.add(metatype);
      const metadata = this.discovery.getMetadataByDecorator(TaskHandlerMarker, wrapper);
      if (!metadata) continue;
      const { name, ...options } = metadata;
      if (typeof (metatype.prototype as Partial<CogmanTaskHandler>).handle !== 'function') {
        throw new TaskHandlerInvalidError(
          name,
          `${metatype.name} has no handle(payload, ctx) method`,
        );
      }
      const resolve = this.resolver(wrapper);
      const singleton = wrapper.isDependencyTreeStatic() && !wrapper.isTransient;
      this.registry.add({
        name,
        options,
        source: metatype.name,
        resolve: this.enhancers ? this.enhancers.wrap(metatype, resolve, singleton) : resolve,
      });
    }
  }

  private resolver(
    wrapper: InstanceWrapper,
  ): (task: TaskInfo) => CogmanTaskHandler | Promise<CogmanTaskHandler> {
    if (wrapper.isDependencyTreeStatic() && !wrapper.isTransient) {
      // A singleton: the instance itself, with no promise to wait for on every task.
      return () => wrapper.instance as CogmanTaskHandler;
    }
    // Request-scoped or transient: a new instance per task, in its own DI context, which
    // receives the task as the "request".
    return async (task) => {
      const contextId = ContextIdFactory.create();
      this.moduleRef.registerRequestByContextId(task, contextId);
      return this.moduleRef.resolve<unknown, CogmanTaskHandler>(wrapper.token, contextId, {
        strict: false,
      });
    };
  }
}
