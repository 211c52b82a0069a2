/**
 * `npm run bench:profile`: Cogman's send path and process path under `node --cpu-prof`, in two
 * processes (a producer sending with `sendTask`, then a worker draining the queue), and a summary
 * of where their CPU time goes during the run (start-up left out). Profiles are written to
 * .bench-results/profiles/ for Chrome DevTools or speedscope.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT, runChild, resourcesOf } from './support/child';
import type { RunConfig, RunResult } from './support/config';
import { formatProfile, summariseProfile } from './support/cpu-profile';
import { machine } from './support/output';
import { deleteResources, uniqueName } from './support/services';
import { fixed } from './support/stats';

const HELP = `Usage: npm run bench:profile -- [flags]
  --count N            tasks sent by the producer, then run by the worker (default 20000)
  --payload BYTES      JSON payload size (default 256)
  --concurrency N      worker concurrency (default 20)
  --window N           sendTask calls in flight (default 100)
  --interval-us N      sampling interval of --cpu-prof (default 500)
  --lib PATH           Cogman sources to load (default libs/cogman/src)`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      help: { type: 'boolean', default: false },
      count: { type: 'string', default: '20000' },
      payload: { type: 'string', default: '256' },
      concurrency: { type: 'string', default: '20' },
      window: { type: 'string', default: '100' },
      lib: { type: 'string' },
      'interval-us': { type: 'string', default: '500' },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const dir = join(ROOT, '.bench-results', 'profiles', stamp);
  mkdirSync(dir, { recursive: true });
  const base: RunConfig = {
    system: 'cogman',
    mode: 'single',
    count: Number(values.count),
    payloadBytes: Number(values.payload),
    concurrency: Number(values.concurrency),
    window: Number(values.window),
    batch: 500,
    bulkWindow: 1,
    rate: 500,
    priority: 'low',
    name: uniqueName('profile'),
    lib: values.lib,
  };
  const profiled = (role: 'producer' | 'worker') => [
    '--cpu-prof',
    `--cpu-prof-dir=${dir}`,
    `--cpu-prof-name=${role}.cpuprofile`,
    `--cpu-prof-interval=${values['interval-us']}`,
  ];
  const host = machine();
  console.log(
    `Profiling Cogman: ${base.count} tasks, ${host.cpus} cores, load average ${host.loadAverage.join(' ')}\n`,
  );
  const report: string[] = [];
  try {
    const timeoutMs = 120_000 + base.count * 20;
    for (const role of ['producer', 'worker'] as const) {
      const result: RunResult = await runChild(
        { ...base, role },
        { timeoutMs, nodeArgs: profiled(role) },
      );
      const rate = role === 'producer' ? result.enqueueRate : result.endToEndRate;
      const cpuMs = result.cpuUserMs + result.cpuSystemMs;
      const header =
        `${role}: ${fixed(rate)} tasks/s, CPU ${fixed(cpuMs)} ms ` +
        `(${fixed((cpuMs * 1000) / base.count)} µs per task), peak RSS ${fixed(result.rssPeakMb)} MiB` +
        (role === 'producer'
          ? `, send p50 ${fixed(result.latency.p50, 2)} ms p99 ${fixed(result.latency.p99, 2)} ms`
          : '');
      const summary = summariseProfile(join(dir, `${role}.cpuprofile`), result.clockUs);
      report.push(`${header}\n${formatProfile(role, summary)}`);
      console.log(report[report.length - 1], '\n');
    }
  } finally {
    await deleteResources(resourcesOf(base));
  }
  writeFileSync(join(dir, 'summary.txt'), `${report.join('\n\n')}\n`);
  console.log(`Profiles and summary in ${dir}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
