import { Queue, Worker } from 'bullmq';
import type { RunConfig } from '../support/config';
import { REDIS_URI } from '../support/services';
import {
  type CompletionTracker,
  payloadMaker,
  TASK_NAME,
  type BenchPayload,
  type BenchSystem,
} from './load';

/**
 * BullMQ with its defaults (completed jobs are kept, as Cogman keeps its task records): jobs
 * added one by one (`add`) or in bulk (`addBulk`), a worker in the same process with a no-op
 * processor and `concurrency` jobs at once. A job counts as finished on the worker's `completed`
 * event, once BullMQ has moved it to the completed set. Cogman's priorities are separate queues,
 * so BullMQ's job priority (a different, slower path) is not used for either.
 */
export function bullmqSystem(config: RunConfig, tracker: CompletionTracker): BenchSystem {
  // The run's unique name is the key prefix: every key of the run is under `<name>:`.
  const options = { connection: { url: REDIS_URI }, prefix: config.name };
  const payload = payloadMaker(config.payloadBytes);
  const queue = new Queue<BenchPayload>('bench', options);
  let worker: Worker<BenchPayload> | undefined;
  const role = config.role ?? 'both';

  return {
    async start() {
      if (role !== 'producer') {
        worker = new Worker<BenchPayload>('bench', async () => {}, {
          ...options,
          concurrency: config.concurrency,
        });
        worker.on('completed', (job) => tracker.complete(job.data.i));
      }
      await Promise.all([queue.waitUntilReady(), worker?.waitUntilReady()]);
    },
    async send(index) {
      await queue.add(TASK_NAME, payload(index));
    },
    async sendBulk(indexes) {
      await queue.addBulk(indexes.map((index) => ({ name: TASK_NAME, data: payload(index) })));
    },
    async drained() {
      // A producer-only process is done once it has sent (its worker process counts the rest).
      if (role === 'producer') return performance.now();
      await tracker.done;
      return tracker.lastAt;
    },
    async stop() {
      await worker?.close();
      await queue.close();
    },
    notes: () => ({}),
  };
}
