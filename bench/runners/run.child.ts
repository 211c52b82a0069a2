/**
 * One benchmark run in its own process, so that its memory is its own: reads the run from
 * BENCH_CONFIG, starts the system, sends and processes the tasks, prints the result on one line
 * (RESULT_PREFIX + JSON) and exits. The parent deletes the run's queues and keys afterwards.
 */
import 'reflect-metadata';
import { READY_LINE, RESULT_PREFIX, type RunConfig } from '../support/config';
import { CompletionTracker, drive, type BenchSystem } from './load';

/** Loads only the system under test, so that the others' modules do not count in its memory. */
async function createSystem(config: RunConfig, tracker: CompletionTracker): Promise<BenchSystem> {
  switch (config.system) {
    case 'raw':
      return (await import('./raw-amqp.system')).rawAmqpSystem(config, tracker);
    case 'bullmq':
    case 'bullmq-2p':
      return (await import('./bullmq.system')).bullmqSystem(config, tracker);
    case 'cogman':
    case 'cogman-mongo':
    case 'cogman-compare':
    case 'cogman-2p':
      return (await import('./cogman.system')).cogmanSystem(config, tracker);
  }
}

async function main(): Promise<void> {
  const config = JSON.parse(process.env.BENCH_CONFIG ?? '') as RunConfig;
  const tracker = new CompletionTracker(config.count);
  const system = await createSystem(config, tracker);
  await system.start();
  process.stdout.write(`${READY_LINE}\n`);
  try {
    const result = await drive(system, config, tracker);
    process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(result)}\n`);
  } finally {
    await system.stop();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
