import type { CogmanClient } from '../client/cogman.client';
import type { CogmanQueues, CogmanServices } from '../inspector/cogman.inspector';
import type { CogmanPauses } from '../worker/queue-pauses';
import { OVERVIEW_INTERVAL, OverviewSnapshot } from './overview.snapshot';

/** A client whose reads are counted: what the snapshot costs the broker and Redis. */
function fakeClient(deadLetters: { count: number }, paused: { high?: Date } = {}) {
  const calls = { queues: 0, workers: 0 };
  const client = {
    services: (): Partial<CogmanServices> => ({
      broker: { uri: 'amqp://x', publisherConnected: true, consumerConnected: true },
      redis: { uri: 'redis://x', topology: 'standalone', connected: true },
      mongo: null,
      offlineTasks: 0,
      pendingRedisWrites: 0,
    }),
    queues: (): Promise<CogmanQueues> => {
      calls.queues++;
      return Promise.resolve({
        queues: [
          { name: 'high_0', kind: 'high', ready: 4, unacked: 0, consumers: 0 },
          { name: 'low_0', kind: 'low', ready: 0, unacked: 0, consumers: 1 },
          { name: 'dlq', kind: 'dead-letter', ready: deadLetters.count, unacked: 0, consumers: 0 },
        ],
        workers: 1,
        tasks: [],
        reportInterval: 2000,
        paused: [],
      });
    },
    workers: () => {
      calls.workers++;
      return Promise.resolve([]);
    },
    pauses: (): Promise<CogmanPauses> =>
      Promise.resolve({
        high: { paused: paused.high !== undefined, since: paused.high ?? null },
        low: { paused: false, since: null },
      }),
  };
  return { client: client as unknown as CogmanClient, calls };
}

describe('OverviewSnapshot', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  const flush = async (ms: number) => {
    await jest.advanceTimersByTimeAsync(ms);
  };

  it('computes one snapshot per interval for every stream, and none while nobody watches', async () => {
    const { client, calls } = fakeClient({ count: 0 });
    const snapshot = new OverviewSnapshot(client);
    await flush(10 * OVERVIEW_INTERVAL);
    expect(calls.queues).toBe(0);

    const seen: string[][] = [[], [], []];
    const subscriptions = seen.map((list) => snapshot.stream.subscribe((o) => list.push(o.at)));
    await flush(5 * OVERVIEW_INTERVAL + 10);
    expect(calls.queues).toBe(6);
    expect(seen[0]).toHaveLength(6);
    expect(seen[1]).toEqual(seen[0]);
    expect(seen[2]).toEqual(seen[0]);

    for (const subscription of subscriptions) subscription.unsubscribe();
    await flush(10 * OVERVIEW_INTERVAL);
    expect(calls.queues).toBe(6);
  });

  it('answers polls within an interval with the same snapshot', async () => {
    const { client, calls } = fakeClient({ count: 0 });
    const snapshot = new OverviewSnapshot(client);
    const polls = await Promise.all(Array.from({ length: 20 }, () => snapshot.current()));
    expect(new Set(polls).size).toBe(1);
    expect(calls.queues).toBe(1);
    await flush(OVERVIEW_INTERVAL);
    await snapshot.current();
    expect(calls.queues).toBe(2);
  });

  it('warns of a high priority queue without consumer and of growing dead letters', async () => {
    const deadLetters = { count: 1 };
    const snapshot = new OverviewSnapshot(fakeClient(deadLetters).client);
    const first = await snapshot.current();
    expect(first.warnings.map((w) => w.code)).toEqual([
      'NO_HIGH_PRIORITY_CONSUMER',
      'NO_WORKER',
      'DEAD_LETTERS',
    ]);
    expect(first.warnings[0]).toMatchObject({
      level: 'error',
      message: expect.stringContaining('high_0'),
    });
    deadLetters.count = 5;
    await flush(OVERVIEW_INTERVAL);
    const later = await snapshot.current();
    expect(later.warnings).toContainEqual(
      expect.objectContaining({
        code: 'DEAD_LETTERS_GROWING',
        message: expect.stringContaining('4 more'),
      }),
    );
    expect(later.deadLetters).toBe(5);
  });

  it('tells which priority is paused, instead of warning that it has no consumer', async () => {
    const since = new Date('2026-01-02T03:04:05.000Z');
    const snapshot = new OverviewSnapshot(fakeClient({ count: 0 }, { high: since }).client);
    const overview = await snapshot.current();
    expect(overview.pauses).toEqual({
      high: { paused: true, since: since.toISOString() },
      low: { paused: false, since: null },
    });
    expect(overview.warnings.map((w) => w.code)).toEqual(['HIGH_PRIORITY_PAUSED', 'NO_WORKER']);
    expect(overview.warnings[0]).toMatchObject({ level: 'warning' });
  });
});
