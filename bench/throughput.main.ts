/**
 * `npm run bench`: Cogman against BullMQ and raw amqplib, on the local RabbitMQ and Redis, one
 * run at a time, each in its own process, on its own queues and keys (deleted afterwards).
 * Prints the medians over the repetitions, the ratios and whether the goals are met, and writes
 * everything to .bench-results/. `--help` lists the flags.
 */
import { parseArgs } from 'node:util';
import { runAndCleanUp } from './support/child';
import {
  BASELINES,
  COGMAN_SYSTEMS,
  DEFAULT_SYSTEMS,
  MODES,
  PRIORITIES,
  SYSTEMS,
  type Priority,
  type RunConfig,
  type RunResult,
  type SendMode,
  type SystemName,
} from './support/config';
import { machine, writeResults } from './support/output';
import { uniqueName } from './support/services';
import { fixed, formatTable, goal, median, quantile } from './support/stats';

const HELP = `Usage: npm run bench -- [flags]
  --smoke              a few hundred tasks, one repetition (proves the benchmark works)
  --count N            tasks per run in single and bulk modes (default 5000)
  --paced-count N      tasks per run in paced mode (default 2000)
  --payload BYTES      JSON payload size (default 256)
  --concurrency N      handlers in flight: BullMQ's and Cogman's worker concurrency (default 20)
  --window N           single mode: send calls in flight (default 100)
  --batch N            bulk mode: tasks per call (default 500)
  --bulk-window N      bulk mode: calls in flight (default 1)
  --rate N             paced mode: tasks per second (default 500)
  --repetitions N      runs of each system and mode (default 3)
  --systems LIST       of ${SYSTEMS.join(',')}
                       (default ${DEFAULT_SYSTEMS.join(',')}, and cogman-compare with --compare-lib)
  --modes LIST         of ${MODES.join(',')} (default all)
  --priority P         single and bulk modes: Cogman priority, and the matching queue mode for
                       raw (default low)
  --paced-priorities LIST  paced mode: the priorities to measure, each a row (default high,low;
                       low priority queues are lazy, high priority ones are not)
  --prefetch-multiplier N  Cogman's prefetchMultiplier (default: Cogman's, 4); the raw consumer's
                       prefetch is the concurrency times it, like Cogman's worker channel
  --raw-ack-delay MS   raw: ack each message MS ms after it arrives (default 0: at once)
  --lib PATH           Cogman sources to load (default libs/cogman/src)
  --compare-lib PATH   other Cogman sources, run as cogman-compare beside cogman
  --cpu-prof DIR       run each child under node --cpu-prof, writing profiles to DIR`;

/** The goals of the benchmark issue. */
const GOALS = { versusBullmq: 1, versusRaw: 0.7, p99LatencyMs: 10 };

function parseOptions() {
  const { values } = parseArgs({
    options: {
      smoke: { type: 'boolean', default: false },
      count: { type: 'string' },
      'paced-count': { type: 'string' },
      payload: { type: 'string', default: '256' },
      concurrency: { type: 'string', default: '20' },
      window: { type: 'string' },
      batch: { type: 'string' },
      'bulk-window': { type: 'string', default: '1' },
      rate: { type: 'string', default: '500' },
      repetitions: { type: 'string' },
      systems: { type: 'string' },
      modes: { type: 'string', default: MODES.join(',') },
      priority: { type: 'string', default: 'low' },
      'paced-priorities': { type: 'string', default: PRIORITIES.join(',') },
      'prefetch-multiplier': { type: 'string' },
      'raw-ack-delay': { type: 'string' },
      lib: { type: 'string' },
      'compare-lib': { type: 'string' },
      'cpu-prof': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    process.exit(0);
  }
  const smoke = values.smoke;
  const int = (value: string | undefined, fallback: number, flag: string) => {
    const n = value === undefined ? fallback : Number(value);
    if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${flag} must be a positive integer`);
    return n;
  };
  const list = <T extends string>(value: string, allowed: readonly T[], flag: string): T[] =>
    value.split(',').map((item) => {
      if (!allowed.includes(item as T)) throw new Error(`--${flag}: unknown "${item}"`);
      return item as T;
    });
  const milliseconds = (value: string | undefined, flag: string) => {
    const ms = value === undefined ? 0 : Number(value);
    if (!Number.isFinite(ms) || ms < 0) throw new Error(`--${flag} must be 0 or more (ms)`);
    return ms;
  };
  const compareLib = values['compare-lib'];
  const defaultSystems = [...DEFAULT_SYSTEMS, ...(compareLib ? ['cogman-compare'] : [])].join(',');
  if (!compareLib && values.systems?.includes('cogman-compare')) {
    throw new Error('cogman-compare needs --compare-lib');
  }
  const priority = PRIORITIES.find((p) => p === values.priority);
  if (!priority) throw new Error('--priority must be low or high');
  return {
    smoke,
    count: int(values.count, smoke ? 300 : 5000, 'count'),
    pacedCount: int(values['paced-count'], smoke ? 200 : 2000, 'paced-count'),
    payloadBytes: int(values.payload, 256, 'payload'),
    concurrency: int(values.concurrency, 20, 'concurrency'),
    window: int(values.window, smoke ? 50 : 100, 'window'),
    batch: int(values.batch, smoke ? 100 : 500, 'batch'),
    bulkWindow: int(values['bulk-window'], 1, 'bulk-window'),
    rate: int(values.rate, 500, 'rate'),
    repetitions: int(values.repetitions, smoke ? 1 : 3, 'repetitions'),
    systems: list<SystemName>(values.systems ?? defaultSystems, SYSTEMS, 'systems'),
    modes: list<SendMode>(values.modes, MODES, 'modes'),
    priority,
    pacedPriorities: list(values['paced-priorities'], PRIORITIES, 'paced-priorities'),
    prefetchMultiplier:
      values['prefetch-multiplier'] === undefined
        ? undefined
        : int(values['prefetch-multiplier'], 1, 'prefetch-multiplier'),
    rawAckDelayMs: milliseconds(values['raw-ack-delay'], 'raw-ack-delay'),
    lib: values.lib,
    compareLib,
    cpuProf: values['cpu-prof'],
  };
}

type Options = ReturnType<typeof parseOptions>;

interface Row {
  mode: SendMode;
  priority: Priority;
  system: SystemName;
  runs: number;
  enqueueRate: number;
  endToEndRate: number;
  p50: number;
  p99: number;
  rssPeakMb: number;
  /** CPU time per task (µs) of the benchmark process, the Redis server and RabbitMQ. */
  cpu: { process: number; redis: number; rabbitmq: number };
  /** Tasks processed in every run, and none twice. */
  complete: boolean;
  mongo: string;
}

function configFor(
  options: Options,
  system: SystemName,
  mode: SendMode,
  priority: Priority,
): RunConfig {
  return {
    system,
    mode,
    count: mode === 'paced' ? options.pacedCount : options.count,
    payloadBytes: options.payloadBytes,
    concurrency: options.concurrency,
    window: options.window,
    batch: options.batch,
    bulkWindow: options.bulkWindow,
    rate: options.rate,
    priority,
    name: uniqueName(system),
    lib: system === 'cogman-compare' ? options.compareLib : options.lib,
    prefetchMultiplier: options.prefetchMultiplier,
    rawAckDelayMs: options.rawAckDelayMs,
  };
}

function describe(result: RunResult): string {
  const { config: c, latency } = result;
  return (
    `${modeLabel(c.mode, c.priority).padEnd(11)} ${c.system.padEnd(12)} e2e ${fixed(result.endToEndRate).padStart(6)}/s` +
    `  enqueue ${fixed(result.enqueueRate).padStart(6)}/s  p50 ${fixed(latency.p50, 1)} ms` +
    `  p99 ${fixed(latency.p99, 1)} ms  peak RSS ${fixed(result.rssPeakMb)} MiB` +
    (result.duplicates ? `  ${result.duplicates} duplicate(s)` : '')
  );
}

/** Paced rows name their priority: it decides the queue's mode, and so the latency. */
function modeLabel(mode: SendMode, priority: Priority): string {
  return mode === 'paced' ? `${mode} ${priority}` : mode;
}

/** The priorities a mode runs at. */
function prioritiesOf(options: Options, mode: SendMode): readonly Priority[] {
  return mode === 'paced' ? options.pacedPriorities : [options.priority];
}

function summarise(results: RunResult[], options: Options): Row[] {
  const rows: Row[] = [];
  for (const mode of options.modes) {
    for (const priority of prioritiesOf(options, mode)) {
      for (const system of options.systems) {
        const row = summariseRuns(
          results.filter(
            (r) =>
              r.config.mode === mode &&
              r.config.priority === priority &&
              r.config.system === system,
          ),
        );
        if (row) rows.push(row);
      }
    }
  }
  return rows;
}

function summariseRuns(runs: RunResult[]): Row | undefined {
  if (runs.length === 0) return undefined;
  const { mode, priority, system } = runs[0].config;
  const of = (pick: (r: RunResult) => number) => median(runs.map(pick));
  const sends = Float64Array.from(runs.flatMap((r) => r.latencies)).sort();
  return {
    mode,
    priority,
    system,
    runs: runs.length,
    enqueueRate: of((r) => r.enqueueRate),
    endToEndRate: of((r) => r.endToEndRate),
    // Over every send of the repetitions together: one stall in one run of a few seconds moves
    // that run's p99 a lot, and a median of such p99s would hide or pick it by chance.
    p50: quantile(sends, 0.5),
    p99: quantile(sends, 0.99),
    rssPeakMb: of((r) => r.rssPeakMb),
    cpu: {
      process: of((r) => perTask(r, r.cpuUserMs + r.cpuSystemMs)),
      redis: of((r) => perTask(r, r.serverCpuMs.redis)),
      rabbitmq: of((r) => perTask(r, r.serverCpuMs.rabbitmq)),
    },
    complete: runs.every((r) => r.completed === r.config.count && r.duplicates === 0),
    mongo: system === 'cogman-mongo' ? String(runs[runs.length - 1].notes.mongo) : '',
  };
}

/** Microseconds of CPU per task. */
function perTask(result: RunResult, ms: number | null): number {
  return ms === null ? NaN : (ms * 1000) / result.config.count;
}

function table(rows: Row[]): string {
  const header = [
    'mode / system',
    'runs',
    'enqueue/s',
    'end-to-end/s',
    'send p50 ms',
    'send p99 ms',
    'peak RSS MiB',
    'CPU µs/task: node',
    'redis',
    'rabbitmq',
    'all done once',
    'Mongo archive',
  ];
  return formatTable(
    header,
    rows.map((row) => [
      `${modeLabel(row.mode, row.priority)} / ${row.system}`,
      String(row.runs),
      fixed(row.enqueueRate),
      fixed(row.endToEndRate),
      fixed(row.p50, 2),
      fixed(row.p99, 2),
      fixed(row.rssPeakMb),
      fixed(row.cpu.process),
      fixed(row.cpu.redis),
      fixed(row.cpu.rabbitmq),
      row.complete ? 'yes' : 'NO',
      row.mongo,
    ]),
  );
}

interface Verdict {
  text: string;
  value: number;
  met: boolean;
}

function verdicts(rows: Row[], options: Options): Verdict[] {
  const find = (mode: SendMode, priority: Priority, system: SystemName) =>
    rows.find((r) => r.mode === mode && r.priority === priority && r.system === system);
  const out: Verdict[] = [];
  for (const mode of ['single', 'bulk'] as const) {
    for (const [cogman, label] of Object.entries(COGMAN_SYSTEMS) as [SystemName, string][]) {
      const c = find(mode, options.priority, cogman);
      if (!c) continue;
      for (const [other, target] of [
        [BASELINES[cogman as keyof typeof BASELINES].bullmq, GOALS.versusBullmq],
        ['raw', GOALS.versusRaw],
      ] as const) {
        const o = find(mode, options.priority, other);
        if (!o) continue;
        const ratio = c.endToEndRate / o.endToEndRate;
        out.push({
          text: `${mode}: ${label} e2e / ${other === 'raw' ? 'raw' : other === 'bullmq' ? 'BullMQ' : 'BullMQ (2 processes)'} e2e = ${goal(ratio, target)}`,
          value: ratio,
          met: ratio >= target,
        });
      }
    }
  }
  for (const priority of options.pacedPriorities) {
    // The broker's own latency on the same queue, for scale.
    const raw = find('paced', priority, 'raw');
    const ceiling = raw ? `; raw amqplib ${fixed(raw.p99, 2)} ms` : '';
    for (const [cogman, label] of Object.entries(COGMAN_SYSTEMS) as [SystemName, string][]) {
      const c = find('paced', priority, cogman);
      if (!c) continue;
      const met = c.p99 < GOALS.p99LatencyMs;
      out.push({
        text: `paced at ${options.rate}/s, ${priority} priority: ${label} p99 send latency = ${fixed(c.p99, 2)} ms (goal < ${GOALS.p99LatencyMs} ms: ${met ? 'met' : 'not met'}${ceiling})`,
        value: c.p99,
        met,
      });
    }
  }
  return out;
}

async function main(): Promise<void> {
  const options = parseOptions();
  const host = machine();
  console.log(
    `Cogman throughput benchmark on ${host.cpus} cores (${host.cpuModel}), Node ${host.node}, ` +
      `load average ${host.loadAverage.join(' ')}`,
  );
  console.log(
    `${options.count} tasks (paced: ${options.pacedCount} at ${options.rate}/s), ` +
      `${options.payloadBytes}-byte payloads, concurrency ${options.concurrency}, ` +
      `window ${options.window}, batch ${options.batch} x ${options.bulkWindow}, ` +
      `${options.priority} priority (paced: ${options.pacedPriorities.join(', ')}), ` +
      `${options.repetitions} repetition(s)` +
      (options.prefetchMultiplier
        ? `, Cogman prefetchMultiplier ${options.prefetchMultiplier}`
        : '') +
      (options.rawAckDelayMs ? `, raw acks ${options.rawAckDelayMs} ms after delivery` : '') +
      '\n',
  );
  const results: RunResult[] = [];
  for (let rep = 1; rep <= options.repetitions; rep++) {
    for (const mode of options.modes) {
      for (const priority of prioritiesOf(options, mode)) {
        for (const system of options.systems) {
          const config = configFor(options, system, mode, priority);
          // Generous: a run that takes this long has hung.
          const timeoutMs = 120_000 + config.count * 20;
          const nodeArgs = options.cpuProf
            ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProf}`]
            : [];
          const result = await runAndCleanUp(config, { timeoutMs, nodeArgs });
          results.push(result);
          console.log(`[${rep}/${options.repetitions}] ${describe(result)}`);
        }
      }
    }
  }
  const rows = summarise(results, options);
  const goals = verdicts(rows, options);
  console.log(
    `\nMedians over ${options.repetitions} repetition(s); send p50 and p99 over all their sends:\n`,
  );
  console.log(table(rows));
  console.log('');
  for (const verdict of goals) console.log(verdict.text);
  const file = writeResults(options.smoke ? 'throughput-smoke' : 'throughput', {
    machine: { ...host, loadAverageAfter: machine().loadAverage },
    options,
    rows,
    goals,
    // The send latencies are summarised above; every one of them would make the file large.
    runs: results.map(({ latencies: _latencies, ...run }) => run),
  });
  console.log(`\nResults written to ${file}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
