import {
  Catch,
  Injectable,
  UseFilters,
  UseGuards,
  UseInterceptors,
  type CallHandler,
  type CanActivate,
  type ExceptionFilter,
  type ExecutionContext,
  type INestApplicationContext,
  type NestInterceptor,
} from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { map, type Observable } from 'rxjs';
import {
  CogmanClient,
  TaskFailedError,
  TaskHandler,
  type CogmanTaskHandler,
  type TaskContext,
} from '@cogman/nestjs';
import { TaskHandlerRegistry } from '../libs/cogman/src/worker/task-handler.registry';
import { testHarness } from './support/harness';

/** What the interceptors saw, in order. */
const seen: string[] = [];

@Injectable()
class WrapResult implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const [payload, ctx] = context.getArgs<[unknown, TaskContext]>();
    seen.push(
      `wrap ${context.getType()} ${context.getClass().name}.${context.getHandler().name} ` +
        `${JSON.stringify(payload)} ${ctx.task.name} ` +
        `${context.switchToRpc().getData() === payload} ${context.switchToRpc().getContext() === ctx}`,
    );
    return next.handle().pipe(map((result: unknown) => ({ wrapped: result })));
  }
}

@Injectable()
class OnMethod implements NestInterceptor {
  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    seen.push('method');
    return next.handle();
  }
}

/** An application-wide interceptor: it applies to handlers that declare enhancers. */
@Injectable()
class Global implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    seen.push(`global ${context.getClass().name}`);
    return next.handle();
  }
}

@Injectable()
class RefuseOdd implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    return (context.getArgs<[{ n: number }]>()[0].n ?? 0) % 2 === 0;
  }
}

@Catch()
class Recover implements ExceptionFilter {
  catch(exception: Error) {
    if (exception.message === 'recoverable') return 'recovered';
    throw new Error(`filtered: ${exception.message}`);
  }
}

@TaskHandler('intercepted')
@UseInterceptors(WrapResult)
class InterceptedHandler implements CogmanTaskHandler {
  @UseInterceptors(OnMethod)
  handle(payload: { n: number }) {
    return payload.n * 2;
  }
}

@TaskHandler('guarded')
@UseGuards(RefuseOdd)
class GuardedHandler implements CogmanTaskHandler {
  handle(payload: { n: number }) {
    return payload.n;
  }
}

@TaskHandler('filtered')
@UseFilters(Recover)
class FilteredHandler implements CogmanTaskHandler {
  handle(payload: { message: string }) {
    throw new Error(payload.message);
  }
}

@TaskHandler('plain')
class PlainHandler implements CogmanTaskHandler {
  handle() {
    return 'plain';
  }
}

describe('Nest enhancers on task handlers', () => {
  const harness = testHarness();
  let app: INestApplicationContext;
  let client: CogmanClient;

  beforeAll(async () => {
    app = await harness.app({ namespace: harness.namespace('enhancers') }, [
      InterceptedHandler,
      GuardedHandler,
      FilteredHandler,
      PlainHandler,
      { provide: APP_INTERCEPTOR, useClass: Global },
    ]);
    client = app.get(CogmanClient);
  });

  beforeEach(() => (seen.length = 0));

  afterAll(async () => {
    await harness.afterEach();
    await harness.afterAll();
  });

  it('runs the interceptors of the class and of handle, in a "cogman" context, around the handler', async () => {
    const done = await client.sendAndWait(
      { name: 'intercepted', payload: { n: 21 } },
      { timeout: 20_000 },
    );
    expect(done.result).toEqual({ wrapped: 42 });
    expect(seen).toEqual([
      'global InterceptedHandler',
      'wrap cogman InterceptedHandler.handle {"n":21} intercepted true true',
      'method',
    ]);
  });

  it('fails a task its guard refuses, and runs one it lets through', async () => {
    const allowed = await client.sendAndWait({ name: 'guarded', payload: { n: 2 } });
    expect(allowed.result).toBe(2);
    const refused = await client
      .sendAndWait({ name: 'guarded', payload: { n: 3 } }, { timeout: 20_000 })
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(TaskFailedError);
    expect((refused as TaskFailedError).failError).toBe('Forbidden resource');
  });

  it('lets an exception filter turn an error into a result, or into another error', async () => {
    const recovered = await client.sendAndWait({
      name: 'filtered',
      payload: { message: 'recoverable' },
    });
    expect(recovered).toMatchObject({ status: 'success', result: 'recovered' });
    const failed = await client
      .sendAndWait({ name: 'filtered', payload: { message: 'fatal' } }, { timeout: 20_000 })
      .catch((error: unknown) => error);
    expect((failed as TaskFailedError).failError).toBe('filtered: fatal');
  });

  it('runs a handler that declares no enhancer as it is, with no interceptor around it', async () => {
    const registry = app.get(TaskHandlerRegistry, { strict: false });
    const info = { name: 'plain' } as never;
    expect(registry.get('plain')!.resolve(info)).toBe(app.get(PlainHandler));
    expect((await client.sendAndWait({ name: 'plain' }, { timeout: 20_000 })).result).toBe('plain');
    expect(seen).toEqual([]);
  });
});
