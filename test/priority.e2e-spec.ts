import type { INestApplicationContext } from '@nestjs/common';
import {
  CogmanClient,
  TaskHandler,
  type CogmanTaskHandler,
  type TaskContext,
} from '@cogman/nestjs';
import { startApp } from './support/app';
import { cleanUp, uniqueNamespace } from './support/services';
import { deferred, waitFor } from './support/wait';

const namespace = uniqueNamespace('priority');
const LOW_CONCURRENCY = 3;
const BACKLOG = 2000;

const gate = deferred();
let lowRunning = 0;
let mostLowRunning = 0;
let lowDone = 0;

@TaskHandler('low-work')
class LowWork implements CogmanTaskHandler {
  async handle(_payload: unknown, ctx: TaskContext) {
    mostLowRunning = Math.max(mostLowRunning, ++lowRunning);
    // Every low slot stays busy until the test opens the gate (or shutdown aborts it).
    await Promise.race([
      gate.promise,
      new Promise((resolve) => ctx.signal.addEventListener('abort', resolve)),
    ]);
    lowRunning--;
    lowDone++;
  }
}

@TaskHandler('high-work')
class HighWork implements CogmanTaskHandler {
  handle() {}
}

describe('Priority isolation', () => {
  let producer: INestApplicationContext;
  let worker: INestApplicationContext | undefined;

  afterAll(async () => {
    gate.resolve();
    await worker?.close();
    await producer?.close();
    await cleanUp(namespace);
  });

  it('runs a high priority task while thousands of slow low priority tasks hold every low slot', async () => {
    producer = await startApp({ namespace, startWorker: false });
    const client = producer.get(CogmanClient);
    await Promise.all(
      Array.from({ length: BACKLOG }, (_, n) =>
        client.sendTask({ name: 'low-work', payload: { n } }),
      ),
    );

    worker = await startApp(
      { namespace, lowPriorityConcurrency: LOW_CONCURRENCY, highPriorityConcurrency: 2 },
      [LowWork, HighWork],
    );
    await waitFor('the low slots to fill', () => lowRunning === LOW_CONCURRENCY);

    const high = await client.sendTask({ name: 'high-work', priority: 'high' });
    await waitFor(
      'the high task to succeed',
      async () => (await client.getTask(high.taskId))?.status === 'success',
    );
    // The low backlog did not move while the high task went through.
    expect(lowDone).toBe(0);
    expect(lowRunning).toBe(LOW_CONCURRENCY);

    gate.resolve();
    await waitFor('the backlog to drain', () => lowDone === BACKLOG, { timeout: 60_000 });
    // Deliveries read ahead wait for a slot: never more handlers than the concurrency.
    expect(mostLowRunning).toBe(LOW_CONCURRENCY);
  });
});
