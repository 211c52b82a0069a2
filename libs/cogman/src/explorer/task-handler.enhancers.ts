import { Injectable } from '@nestjs/common';
import {
  EXCEPTION_FILTERS_METADATA,
  GUARDS_METADATA,
  INTERCEPTORS_METADATA,
} from '@nestjs/common/constants';
import { ExternalContextCreator } from '@nestjs/core';
import type { CogmanTaskHandler, TaskInfo } from '../task';

/** The `ExecutionContext.getType()` of a task handler run inside Nest's enhancers. */
export const COGMAN_CONTEXT_TYPE = 'cogman';

type Resolve = (task: TaskInfo) => CogmanTaskHandler | Promise<CogmanTaskHandler>;

/**
 * Runs a handler class's `handle` inside Nest's execution context when the class (or its `handle`
 * method) declares enhancers: `@UseInterceptors`, `@UseGuards`, `@UseFilters` (the application's
 * global ones then apply too, as for a microservice's message handler). Pipes do not apply (the
 * handler takes no decorated parameters). The context's type is `'cogman'`; its arguments are
 * `[payload, ctx]` (`switchToRpc().getData()` is the payload, `getContext()` the `TaskContext`).
 * A handler that declares none runs as it is, with nothing in between.
 */
@Injectable()
export class TaskHandlerEnhancers {
  constructor(private readonly contexts: ExternalContextCreator) {}

  /** The resolver of a handler, wrapped in its enhancers if it declares any. */
  wrap(metatype: new (...args: never[]) => unknown, resolve: Resolve, singleton: boolean): Resolve {
    const declared = declaredEnhancers(metatype);
    if (!declared) return resolve;
    const enhance = (instance: CogmanTaskHandler): CogmanTaskHandler => {
      const handle = this.contexts.create(
        instance,
        // The method itself (not bound): its metadata holds the method-level enhancers.
        // eslint-disable-next-line @typescript-eslint/unbound-method -- applied to `instance`
        instance.handle as (...args: unknown[]) => unknown,
        'handle',
        undefined,
        undefined,
        undefined,
        undefined,
        // Nest's own filter (after the declared ones) logs every error: only with @UseFilters.
        { interceptors: true, guards: true, filters: declared.filters },
        COGMAN_CONTEXT_TYPE,
      );
      return { handle: (payload, ctx) => handle(payload, ctx) };
    };
    if (singleton) {
      // Created on the first task, once the application's global enhancers are all known.
      let enhanced: CogmanTaskHandler | undefined;
      return (task) => (enhanced ??= enhance(resolve(task) as CogmanTaskHandler));
    }
    return async (task) => enhance(await resolve(task));
  }
}

/** Which enhancers a handler class declares (on the class or on `handle`); null for none. */
function declaredEnhancers(
  metatype: new (...args: never[]) => unknown,
): { filters: boolean } | null {
  const handle = (metatype.prototype as Partial<CogmanTaskHandler>).handle;
  const declares = (key: string) =>
    [metatype, handle].some((target) => {
      const value: unknown = target && Reflect.getMetadata(key, target);
      return Array.isArray(value) && value.length > 0;
    });
  const filters = declares(EXCEPTION_FILTERS_METADATA);
  if (!filters && !declares(INTERCEPTORS_METADATA) && !declares(GUARDS_METADATA)) return null;
  return { filters };
}
