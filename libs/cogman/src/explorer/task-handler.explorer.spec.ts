import { Injectable, Module, Scope } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { TaskHandler } from '../decorators/task-handler.decorator';
import type { TaskHandlerOptions } from '../decorators/task-handler.decorator';
import { TaskHandlerDuplicateError, TaskHandlerInvalidError } from '../errors';
import type { TaskInfo } from '../task';
import { TaskHandlerRegistry } from '../worker/task-handler.registry';
import { TaskHandlerExplorer } from './task-handler.explorer';

@TaskHandler('email')
class EmailHandler {
  handle() {}
}

@TaskHandler('email')
class OtherEmailHandler {
  handle() {}
}

// @ts-expect-error -- refused at compile time too; this spec checks the boot refuses it
@TaskHandler('report')
class NoHandleMethod {}

@Injectable({ scope: Scope.REQUEST })
class PerTask {}

@TaskHandler('scoped')
class ScopedHandler {
  constructor(readonly perTask: PerTask) {}
  handle() {}
}

async function explore(...providers: (new (...args: never[]) => unknown)[]) {
  const moduleRef = await Test.createTestingModule({
    imports: [DiscoveryModule],
    providers: [TaskHandlerRegistry, TaskHandlerExplorer, ...providers],
  }).compile();
  await moduleRef.init();
  return moduleRef;
}

const task: TaskInfo = {
  taskId: 't1',
  name: 'scoped',
  originalTaskId: 't1',
  primaryKey: null,
  retry: 0,
  attempt: 1,
  priority: 'low',
  headers: {},
  createdAt: new Date(),
};

describe('TaskHandlerExplorer', () => {
  it('registers each @TaskHandler provider under its name', async () => {
    const moduleRef = await explore(EmailHandler);
    const registry = moduleRef.get(TaskHandlerRegistry);
    expect(registry.names()).toEqual(['email']);
    const handler = registry.get('email')!;
    expect(handler.source).toBe('EmailHandler');
    expect(await handler.resolve(task)).toBe(moduleRef.get(EmailHandler));
    await moduleRef.close();
  });

  it('fails at boot when two handlers claim one task name', async () => {
    const boot = explore(EmailHandler, OtherEmailHandler);
    await expect(boot).rejects.toThrow(TaskHandlerDuplicateError);
    await expect(boot).rejects.toThrow(
      /Task "email" has two handlers: EmailHandler and OtherEmailHandler/,
    );
  });

  it('fails at boot when a handler class has no handle method', async () => {
    await expect(explore(NoHandleMethod)).rejects.toThrow(TaskHandlerInvalidError);
    await expect(explore(NoHandleMethod)).rejects.toThrow(
      /NoHandleMethod has no handle\(payload, ctx\) method/,
    );
  });

  it('resolves a handler with request-scoped dependencies anew for each task', async () => {
    const moduleRef = await explore(ScopedHandler, PerTask);
    const handler = moduleRef.get(TaskHandlerRegistry).get('scoped')!;
    const first = (await handler.resolve(task)) as ScopedHandler;
    const second = (await handler.resolve({ ...task, taskId: 't2' })) as ScopedHandler;
    expect(first).toBeInstanceOf(ScopedHandler);
    expect(first).not.toBe(second);
    expect(first.perTask).not.toBe(second.perTask);
    await moduleRef.close();
  });

  it('counts one class provided in two modules as one handler', async () => {
    @Module({ providers: [EmailHandler] })
    class A {}
    @Module({ providers: [EmailHandler] })
    class B {}
    const moduleRef = await Test.createTestingModule({
      imports: [DiscoveryModule, A, B],
      providers: [TaskHandlerRegistry, TaskHandlerExplorer],
    }).compile();
    await moduleRef.init();
    expect(moduleRef.get(TaskHandlerRegistry).names()).toEqual(['email']);
    await moduleRef.close();
  });
});

describe('TaskHandlerRegistry', () => {
  it('rejects names that cannot travel in a header', () => {
    const registry = new TaskHandlerRegistry();
    const entry = { options: {}, source: 'x', resolve: () => ({ handle() {} }) };
    expect(() => registry.add({ ...entry, name: '' })).toThrow(TaskHandlerInvalidError);
    expect(() => registry.add({ ...entry, name: 'x'.repeat(256) })).toThrow(
      TaskHandlerInvalidError,
    );
  });

  it('rejects options it does not know, naming the key and the one it likely stands for', () => {
    const registry = new TaskHandlerRegistry();
    const entry = { name: 'x', source: 'x', resolve: () => ({ handle() {} }) };
    const options = (value: object) => value as TaskHandlerOptions;
    expect(() => registry.add({ ...entry, options: options({ scheduel: 1 }) })).toThrow(
      'Invalid handler for task "x": "scheduel" is not a handler option',
    );
    expect(() => registry.add({ ...entry, options: options({ retires: 2 }) })).toThrow(
      '"retires" is not a handler option (did you mean "retry"?)',
    );
    expect(() => registry.add({ ...entry, options: options({ payload: 'xml' }) })).toThrow(
      'payload must be "auto" or "json", not "xml"',
    );
    registry.add({
      ...entry,
      options: { payload: 'json', retry: 1, timeout: 5, backoff: () => 1 },
    });
    expect(registry.names()).toEqual(['x']);
  });
});
