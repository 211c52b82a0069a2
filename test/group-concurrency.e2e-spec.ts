import type { Redis } from 'ioredis';
import { CogmanClient, TaskInvalidError } from '@cogman/nestjs';
import { testHarness } from './support/harness';
import { call, startHttpApp } from './support/http';
import { openRedis } from './support/services';
import { waitFor } from './support/wait';
import { stopWorkerProcess } from './support/worker-process';

interface GroupedEvent {
  what: 'start' | 'end';
  taskId: string;
  at: number;
  group: string;
  pid: number;
}

/** The most tasks of `group` running at once, from the starts and ends the handlers listed. */
function mostAtOnce(events: GroupedEvent[], group: string): number {
  let running = 0;
  let most = 0;
  const ofGroup = events
    .filter((event) => event.group === group)
    // At one instant, an end comes before a start: the slot was released before it was taken.
    .sort((a, b) => a.at - b.at || (a.what === 'end' ? -1 : 1));
  for (const event of ofGroup) {
    running += event.what === 'start' ? 1 : -1;
    most = Math.max(most, running);
  }
  return most;
}

describe('Group concurrency across worker processes', () => {
  const harness = testHarness();
  let redis: Redis;

  beforeAll(() => {
    redis = openRedis();
  });

  afterEach(() => harness.afterEach());

  afterAll(async () => {
    redis.disconnect();
    await harness.afterAll();
  });

  const events = async (namespace: string): Promise<GroupedEvent[]> =>
    (await redis.lrange(`test:${namespace}:grouped`, 0, -1)).map((line) => {
      const [what, taskId, at, group, pid] = line.split(' ');
      return { what, taskId, at: Number(at), group, pid: Number(pid) } as GroupedEvent;
    });

  it('never runs a third task of a group on two workers, and lets other groups run beside it', async () => {
    const namespace = harness.namespace('groups');
    const client = (await harness.app({ namespace, startWorker: false })).get(CogmanClient);
    await Promise.all([harness.worker(namespace), harness.worker(namespace)]);
    const tasks = await client.sendTasks([
      ...Array.from({ length: 8 }, () => ({ name: 'grouped', group: 'a', payload: { ms: 300 } })),
      ...Array.from({ length: 4 }, () => ({ name: 'grouped', group: 'b', payload: { ms: 300 } })),
      ...Array.from({ length: 4 }, () => ({ name: 'grouped', payload: { ms: 300 } })),
    ]);
    const done = await Promise.all(
      tasks.map((task) => client.waitForResult(task.taskId, { timeout: 60_000 })),
    );
    expect(done.every((record) => record.attempt === 1)).toBe(true);
    const seen = await events(namespace);
    expect(seen.filter((event) => event.what === 'start')).toHaveLength(16);
    expect(mostAtOnce(seen, 'a')).toBe(2);
    expect(mostAtOnce(seen, 'b')).toBe(2);
    // Tasks without a group are not limited.
    expect(mostAtOnce(seen, 'undefined')).toBeGreaterThan(2);
  }, 90_000);

  it("gives a killed worker's slots back once their leases lapse", async () => {
    const namespace = harness.namespace('groups-kill');
    const client = (await harness.app({ namespace, startWorker: false })).get(CogmanClient);
    const first = await harness.worker(namespace);
    const holders = await client.sendTasks([
      { name: 'grouped', group: 'k', payload: { hold: true } },
      { name: 'grouped', group: 'k', payload: { hold: true } },
    ]);
    await waitFor('both holders to start', async () =>
      (await events(namespace)).filter((e) => e.what === 'start').length === 2 ? true : null,
    );
    const waiting = await client.sendTask({ name: 'grouped', group: 'k', payload: { ms: 0 } });
    // The holders' worker dies; they are cancelled, so no worker runs them again: only the
    // lapse of their leases can free the group's slots.
    await stopWorkerProcess(first, 'SIGKILL');
    const killedAt = Date.now();
    for (const holder of holders) await client.cancelTask(holder.taskId);
    await harness.worker(namespace);
    const done = await client.waitForResult(waiting.taskId, { timeout: 60_000 });
    expect(done.attempt).toBe(1);
    const start = (await events(namespace)).find(
      (e) => e.what === 'start' && e.taskId === waiting.taskId,
    )!;
    // Not before the leases (10 s, renewed every 2.5 s) could lapse.
    expect(start.at - killedAt).toBeGreaterThanOrEqual(5000);
  }, 90_000);

  it('takes a group through POST /tasks', async () => {
    const namespace = harness.namespace('groups-rest');
    const http = await startHttpApp({ namespace, startWorker: false });
    try {
      const sent = await call(`${http.api}/tasks`, {
        method: 'POST',
        body: { name: 'grouped', group: 'tenant-42' },
      });
      expect(sent.status).toBe(201);
      expect(sent.body.headers).toEqual({ 'cogman-group': 'tenant-42' });
    } finally {
      await http.app.close();
    }
  });

  it('refuses a group that is not a non-empty string', async () => {
    const namespace = harness.namespace('groups-invalid');
    const client = (await harness.app({ namespace, startWorker: false })).get(CogmanClient);
    await expect(client.sendTask({ name: 'grouped', group: '' })).rejects.toBeInstanceOf(
      TaskInvalidError,
    );
  });
});
