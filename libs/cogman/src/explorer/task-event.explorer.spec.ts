import { Injectable, Scope } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { OnTaskEvent } from '../decorators/task-event.decorator';
import { TaskEventListenerInvalidError } from '../errors';
import type { TaskEvent, TaskEventType, TaskInfo } from '../task';
import { TaskEvents } from '../worker/task-events';
import { TaskEventExplorer } from './task-event.explorer';

const calls: string[] = [];

@Injectable()
class Listener {
  @OnTaskEvent(['completed', 'failed'])
  any(event: TaskEvent) {
    calls.push(`any ${event.type} ${event.task!.name}`);
  }

  @OnTaskEvent('completed', { name: ['email'] })
  email(event: TaskEvent) {
    calls.push(`email ${event.type}`);
  }

  notAListener() {}
}

@Injectable({ scope: Scope.REQUEST })
class ScopedListener {
  @OnTaskEvent('completed')
  on() {}
}

@Injectable()
class UnknownEvent {
  @OnTaskEvent('finished' as TaskEventType)
  on() {}
}

async function explore(...providers: (new (...args: never[]) => unknown)[]) {
  const moduleRef = await Test.createTestingModule({
    imports: [DiscoveryModule],
    providers: [TaskEvents, TaskEventExplorer, ...providers],
  }).compile();
  await moduleRef.init();
  return moduleRef;
}

const task = (name: string) => ({ name, taskId: 't', originalTaskId: 't', attempt: 1 }) as TaskInfo;

describe('TaskEventExplorer', () => {
  beforeEach(() => (calls.length = 0));

  it('adds each @OnTaskEvent method, with its event types and task names', async () => {
    const events = (await explore(Listener)).get(TaskEvents);
    expect(events.listening).toBe(true);
    events.emit({ type: 'completed', task: task('email'), result: null, duration: 1 });
    events.emit({ type: 'completed', task: task('report'), result: null, duration: 1 });
    events.emit({ type: 'started', task: task('email') });
    expect(calls).toEqual(['any completed email', 'email completed', 'any completed report']);
  });

  it('listens to nothing when no provider has a listener', async () => {
    expect((await explore()).get(TaskEvents).listening).toBe(false);
  });

  it('refuses a listener on a request-scoped provider', async () => {
    await expect(explore(ScopedListener)).rejects.toThrow(TaskEventListenerInvalidError);
  });

  it('refuses an unknown event', async () => {
    await expect(explore(UnknownEvent)).rejects.toThrow(/unknown event "finished"/);
  });
});
