import { Test } from '@nestjs/testing';
import { CogmanInspector } from '../cogman.inspector';
import { TaskInvalidError, TasksNotSentError } from '../errors';
import { TaskLog } from '../store/task-log';
import { TASK_LOG_STORE, type TaskLogStore } from '../store/task-log.store';
import type { SendTaskOptions } from '../task';
import { CogmanClient } from './cogman.client';
import { TaskDispatcher } from './task.dispatcher';

describe('CogmanClient.sendTask', () => {
  const dispatched: unknown[] = [];
  const written: unknown[] = [];
  let client: CogmanClient;

  beforeEach(async () => {
    dispatched.length = 0;
    written.length = 0;
    const store: TaskLogStore = {
      record: (change) => {
        written.push(change);
        return Promise.resolve({ applied: true, previous: null });
      },
      get: () => Promise.resolve(null),
    };
    const moduleRef = await Test.createTestingModule({
      providers: [
        CogmanClient,
        {
          provide: TaskDispatcher,
          useValue: {
            dispatch: (task: { name: string }) => {
              dispatched.push(task);
              return task.name === 'unpublishable'
                ? Promise.reject(new Error('nacked'))
                : Promise.resolve('queued');
            },
          },
        },
        { provide: TASK_LOG_STORE, useValue: store },
        TaskLog,
        { provide: CogmanInspector, useValue: {} },
      ],
    }).compile();
    client = moduleRef.get(CogmanClient);
  });

  const circular: Record<string, unknown> = {};
  circular.self = circular;

  it.each<[string, unknown, string]>([
    ['no name', { payload: 1 }, 'name'],
    ['an empty name', { name: '  ' }, 'name'],
    ['a name over 255 bytes', { name: 'é'.repeat(128) }, 'name'],
    ['a bad priority', { name: 'x', priority: 'urgent' }, 'priority'],
    ['a Go-style priority', { name: 'x', priority: 'High' }, 'priority'],
    ['a negative retry', { name: 'x', retry: -1 }, 'retry'],
    ['a fractional retry', { name: 'x', retry: 1.5 }, 'retry'],
    ['an empty primary key', { name: 'x', primaryKey: '' }, 'primaryKey'],
    ['a non-string header', { name: 'x', headers: { a: 1 } }, 'headers'],
    ['a reserved header', { name: 'x', headers: { TaskID: 'forged' } }, 'headers'],
    ['a circular payload', { name: 'x', payload: circular }, 'payload'],
    ['a BigInt payload', { name: 'x', payload: { n: 10n } }, 'payload'],
    ['a function payload', { name: 'x', payload: () => 1 }, 'payload'],
    ['no options', undefined, 'options'],
  ])(
    'rejects a task with %s before anything is written or published',
    async (_case, options, field) => {
      const sending = client.sendTask(options as SendTaskOptions);
      await expect(sending).rejects.toThrow(TaskInvalidError);
      await expect(sending).rejects.toMatchObject({ field, code: 'COGMAN_TASK_INVALID' });
      expect(dispatched).toEqual([]);
      expect(written).toEqual([]);
    },
  );

  it('rejects a bulk send with one invalid task before sending any, naming its index', async () => {
    const sending = client.sendTasks([{ name: 'ok' }, { name: 'ok', retry: -2 }]);
    await expect(sending).rejects.toMatchObject({
      field: 'tasks[1].retry',
      code: 'COGMAN_TASK_INVALID',
    });
    expect(dispatched).toEqual([]);
  });

  it('sends tasks in bulk, in order', async () => {
    const records = await client.sendTasks([{ name: 'a' }, { name: 'b', priority: 'high' }]);
    expect(records.map((r) => [r.name, r.priority, r.status])).toEqual([
      ['a', 'low', 'queued'],
      ['b', 'high', 'queued'],
    ]);
    expect(dispatched).toHaveLength(2);
  });

  it('reports which tasks of a bulk send were not sent, with the records of those that were', async () => {
    const sending = client.sendTasks([{ name: 'a' }, { name: 'unpublishable' }, { name: 'c' }]);
    await expect(sending).rejects.toThrow(TasksNotSentError);
    const error = (await sending.catch((e: unknown) => e)) as TasksNotSentError;
    expect(error.failures.map((f) => f.index)).toEqual([1]);
    expect(error.sent.map((r) => (r as { name: string } | undefined)?.name)).toEqual([
      'a',
      undefined,
      'c',
    ]);
    expect(error.message).toBe('1 of 3 tasks were not sent; the first (index 1): nacked');
  });

  it('gives a valid task an id, defaults and its payload, and returns it queued', async () => {
    const record = await client.sendTask({ name: 'email', payload: { to: 'a@b.c' } });
    expect(record).toMatchObject({
      name: 'email',
      priority: 'low',
      retry: 0,
      attempt: 1,
      primaryKey: null,
      status: 'queued',
      payload: { to: 'a@b.c' },
    });
    expect(record.originalTaskId).toBe(record.taskId);
    expect(record.taskId).toMatch(/^[0-9a-f-]{36}$/);
    expect(dispatched).toHaveLength(1);
  });
});
