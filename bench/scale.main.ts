/**
 * `npm run bench:scale`: how Cogman's cost grows with the work queued. For each size, a producer
 * process sends that many low priority tasks (`sendTasks` in batches, no worker running), then a
 * worker process drains the queue. Reports enqueue time, drain time, the peak memory of each
 * process, and what the queue and the Redis log hold in between. `--help` lists the flags.
 */
import { parseArgs } from 'node:util';
import { resourcesOf, runChild } from './support/child';
import type { RunConfig, RunResult } from './support/config';
import { machine, writeResults } from './support/output';
import {
  deleteResources,
  queueDepth,
  rabbitQueueStats,
  redisFootprint,
  uniqueName,
} from './support/services';
import { fixed, formatTable } from './support/stats';

const HELP = `Usage: npm run bench:scale -- [flags]
  --smoke              one size of 300 tasks (proves the benchmark works)
  --sizes LIST         tasks queued per step (default 10000,100000; the full run adds 1000000)
  --payload BYTES      JSON payload size (default 256)
  --concurrency N      worker concurrency (default 20)
  --batch N            tasks per sendTasks call (default 1000)
  --bulk-window N      sendTasks calls in flight (default 2)
  --lib PATH           Cogman sources to load (default libs/cogman/src)`;

interface Step {
  size: number;
  producer: RunResult;
  worker: RunResult;
  queued: number | null;
  queue: Awaited<ReturnType<typeof rabbitQueueStats>>;
  redis: { keys: number; bytes: number };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      smoke: { type: 'boolean', default: false },
      sizes: { type: 'string' },
      payload: { type: 'string', default: '256' },
      concurrency: { type: 'string', default: '20' },
      batch: { type: 'string', default: '1000' },
      'bulk-window': { type: 'string', default: '2' },
      lib: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const sizes = (values.sizes ?? (values.smoke ? '300' : '10000,100000')).split(',').map(Number);
  if (sizes.some((n) => !Number.isSafeInteger(n) || n < 1)) {
    throw new Error('--sizes must list positive integers');
  }
  const host = machine();
  console.log(
    `Cogman scale benchmark on ${host.cpus} cores, Node ${host.node}, load average ${host.loadAverage.join(' ')}\n`,
  );
  const steps: Step[] = [];
  for (const size of sizes) {
    const config: RunConfig = {
      system: 'cogman',
      mode: 'bulk',
      count: size,
      payloadBytes: Number(values.payload),
      concurrency: Number(values.concurrency),
      window: 1,
      batch: Number(values.batch),
      bulkWindow: Number(values['bulk-window']),
      rate: 1,
      priority: 'low',
      name: uniqueName('scale'),
      lib: values.lib,
    };
    const queue = `${config.name}.low_priority_queue_0`;
    // Generous: a step that takes this long has hung (about 30 times the expected time).
    const timeoutMs = 120_000 + size * 10;
    try {
      const nodeArgs = ['--expose-gc'];
      const producer = await runChild({ ...config, role: 'producer' }, { timeoutMs, nodeArgs });
      const queued = await queueDepth(queue);
      const queueStats = await rabbitQueueStats(queue);
      const redis = await redisFootprint(`cogman:{${config.name}}:*`);
      console.log(
        `${size}: enqueued in ${fixed(producer.enqueueMs / 1000, 1)} s, ${queued} queued, ` +
          `producer peak RSS ${fixed(producer.rssPeakMb)} MiB; draining...`,
      );
      const worker = await runChild({ ...config, role: 'worker' }, { timeoutMs, nodeArgs });
      console.log(
        `${size}: drained in ${fixed(worker.endToEndMs / 1000, 1)} s, ` +
          `worker peak RSS ${fixed(worker.rssPeakMb)} MiB`,
      );
      steps.push({ size, producer, worker, queued, queue: queueStats, redis });
    } finally {
      await deleteResources(resourcesOf(config));
    }
  }
  const rows = steps.map((s) => [
    String(s.size),
    fixed(s.producer.enqueueMs / 1000, 1),
    fixed(s.producer.enqueueRate),
    fixed(s.producer.rssPeakMb),
    fixed(Number(s.producer.notes.heapAfterGcMb)),
    s.queued === null ? '-' : String(s.queued),
    s.queue ? fixed(s.queue.memoryBytes / 2 ** 20, 1) : '-',
    fixed(s.redis.bytes / 2 ** 20, 1),
    fixed(s.redis.bytes / Math.max(1, s.redis.keys)),
    fixed(s.worker.endToEndMs / 1000, 1),
    fixed(s.worker.endToEndRate),
    fixed(s.worker.rssPeakMb),
    fixed(Number(s.worker.notes.heapAfterGcMb)),
    s.worker.completed === s.size && s.worker.duplicates === 0 ? 'yes' : 'NO',
  ]);
  console.log('');
  console.log(
    formatTable(
      [
        'tasks',
        'enqueue s',
        'enqueue/s',
        'producer peak RSS MiB',
        'heap after GC',
        'queued',
        'queue memory MiB',
        'Redis log MiB',
        'bytes/record',
        'drain s',
        'drain/s',
        'worker peak RSS MiB',
        'heap after GC',
        'all done once',
      ],
      rows,
    ),
  );
  const file = writeResults(values.smoke ? 'scale-smoke' : 'scale', {
    machine: { ...host, loadAverageAfter: machine().loadAverage },
    options: values,
    steps,
  });
  console.log(`\nResults written to ${file}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
