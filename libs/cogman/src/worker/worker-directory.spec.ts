import { Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { resolveCogmanOptions } from '../config';
import { TaskHandlerRegistry } from './task-handler.registry';
import { WorkerDirectory } from './worker-directory';

/** Just what WorkerDirectory reads of Redis: the live worker ids and each one's report. */
function fakeRedis(reports: Record<string, Record<string, string>>) {
  const calls = { reads: 0 };
  const redis = {
    status: 'ready',
    zrangebyscore: () => {
      calls.reads++;
      return Promise.resolve(Object.keys(reports));
    },
    hgetall: (key: string) => Promise.resolve(reports[key.split(':').pop()!] ?? {}),
  };
  return { redis: redis as unknown as Redis, calls };
}

describe('WorkerDirectory', () => {
  const options = resolveCogmanOptions({ amqpUri: 'amqp://x', redisUri: 'redis://x' });
  const warnings: string[] = [];
  beforeEach(() => {
    warnings.length = 0;
    jest.spyOn(Logger.prototype, 'warn').mockImplementation((message: unknown) => {
      warnings.push(String(message));
    });
  });
  afterEach(() => jest.restoreAllMocks());

  const until = async (check: () => boolean) => {
    const deadline = Date.now() + 2000;
    while (!check()) {
      if (Date.now() > deadline) throw new Error('timed out');
      await new Promise((resolve) => setImmediate(resolve));
    }
  };

  it('reads what each live worker holds and which tasks it runs', async () => {
    const { redis } = fakeRedis({
      'h-1-a': { pid: '1', host: 'h', at: '5', tasks: '["email","report"]', q0: '3' },
      'h-2-b': { pid: '2', host: 'h', at: '5', q0: '1' }, // a worker of an older Cogman
    });
    const directory = new WorkerDirectory(options, new TaskHandlerRegistry(), redis);
    const reports = await directory.read();
    expect(reports).toEqual([
      { id: 'h-1-a', host: 'h', pid: 1, tasks: ['email', 'report'], held: new Map([['q0', 3]]) },
      { id: 'h-2-b', host: 'h', pid: 2, tasks: [], held: new Map([['q0', 1]]) },
    ]);
  });

  it('warns once per task name no live worker runs, reading Redis only when its answer is stale', async () => {
    const { redis, calls } = fakeRedis({ 'h-1-a': { pid: '1', host: 'h', tasks: '["email"]' } });
    const directory = new WorkerDirectory(options, new TaskHandlerRegistry(), redis);
    directory.checkServed('sms');
    directory.checkServed('sms');
    await until(() => warnings.length > 0);
    directory.checkServed('sms');
    await directory.cached(60_000);
    expect(warnings).toEqual([
      expect.stringContaining('No live worker has a handler for task "sms"'),
    ]);

    const reads = calls.reads;
    for (let i = 0; i < 100; i++) directory.checkServed('email');
    expect(calls.reads).toBe(reads);
    expect(warnings).toHaveLength(1);
  });

  it('says nothing while Redis is away', async () => {
    const { redis } = fakeRedis({});
    (redis as { status: string }).status = 'reconnecting';
    const directory = new WorkerDirectory(options, new TaskHandlerRegistry(), redis);
    directory.checkServed('sms');
    await expect(directory.read()).rejects.toThrow('Redis is not connected');
    expect(warnings).toEqual([]);
  });
});
