import {
  CogmanClient,
  TaskHandler,
  type CogmanTaskHandler,
  type TaskContext,
} from '@cogman/nestjs';
import { testHarness } from './support/harness';
import { call, startHttpApp } from './support/http';
import { waitFor } from './support/wait';

const running = new Set<string>();

/** Runs until its signal aborts. */
@TaskHandler('held', { rateLimit: { max: 2, duration: 60_000 }, groupConcurrency: 1 })
class HeldHandler implements CogmanTaskHandler {
  async handle(_payload: unknown, ctx: TaskContext) {
    running.add(ctx.task.taskId);
    await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
    running.delete(ctx.task.taskId);
  }
}

describe('The state of rate limits and groups', () => {
  const harness = testHarness();
  let after = () => Promise.resolve();

  afterAll(async () => {
    await after();
    await harness.afterEach();
    await harness.afterAll();
  });

  it('shows the starts in the window, the attempts waiting for a turn and the groups running', async () => {
    const http = await startHttpApp(
      { namespace: harness.namespace('limits'), shutdownTimeout: 500 },
      { providers: [HeldHandler] },
    );
    after = () => http.app.close();
    const client = http.app.get(CogmanClient);
    const [x1, , y1] = await client.sendTasks([
      { name: 'held', group: 'x' },
      { name: 'held', group: 'x' },
      { name: 'held', group: 'y' },
    ]);
    await waitFor(
      'one task of each group to run',
      () => running.has(x1.taskId) && running.has(y1.taskId),
    );
    // Its group has a slot, the rate limit none: it is given a turn a minute from now.
    const late = await client.sendTask({ name: 'held', group: 'z' });
    await waitFor('the late task to wait for its turn', async () => {
      return (await client.getTask(late.taskId))?.status === 'scheduled';
    });
    const [limits] = await client.limits();
    expect(limits).toEqual({
      name: 'held',
      rateLimit: { max: 2, duration: 60_000, started: 2, waiting: 1 },
      groupConcurrency: {
        slots: 1,
        groups: [
          { group: 'x', running: 1 },
          { group: 'y', running: 1 },
        ],
      },
    });
    expect(running.size).toBe(2);
    expect((await call(`${http.api}/limits`)).body).toEqual({ limits: [limits] });
  });
});
