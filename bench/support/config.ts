/**
 * The systems the throughput benchmark compares. `cogman-compare` is Cogman loaded from the
 * `--compare-lib` sources (another branch, a prototype), beside this repository's in the same run.
 */
export const SYSTEMS = [
  'raw',
  'bullmq',
  'cogman',
  'cogman-mongo',
  'cogman-compare',
  'bullmq-2p',
  'cogman-2p',
] as const;
export type SystemName = (typeof SYSTEMS)[number];

/**
 * Systems whose producer and worker run as two processes, as they are deployed (the others run
 * both in one process).
 */
export const TWO_PROCESS_SYSTEMS: readonly SystemName[] = ['bullmq-2p', 'cogman-2p'];

/** What `npm run bench` runs unless told otherwise. */
export const DEFAULT_SYSTEMS: readonly SystemName[] = [
  'raw',
  'bullmq',
  'cogman',
  'cogman-mongo',
  'bullmq-2p',
  'cogman-2p',
];

/** The Cogman systems, with the label of their ratio lines. */
export const COGMAN_SYSTEMS = {
  cogman: 'Cogman',
  'cogman-mongo': 'Cogman+Mongo',
  'cogman-compare': 'Cogman (--compare-lib)',
  'cogman-2p': 'Cogman (2 processes)',
} as const;

/** What each Cogman system is compared with: BullMQ run the same way, and raw amqplib. */
export const BASELINES: Record<keyof typeof COGMAN_SYSTEMS, { bullmq: SystemName }> = {
  cogman: { bullmq: 'bullmq' },
  'cogman-mongo': { bullmq: 'bullmq' },
  'cogman-compare': { bullmq: 'bullmq' },
  'cogman-2p': { bullmq: 'bullmq-2p' },
};

/**
 * How tasks are sent:
 * - `single`: one task per call, `window` calls in flight (amqplib: outstanding confirms);
 * - `bulk`: `batch` tasks per call (BullMQ `addBulk`, Cogman `sendTasks`), `bulkWindow` calls in
 *   flight;
 * - `paced`: one task per call at a fixed `rate`, whatever the answers (latency at moderate load).
 */
export const MODES = ['single', 'bulk', 'paced'] as const;
export type SendMode = (typeof MODES)[number];

/** Cogman's priorities: low priority queues are lazy (on disk first), high priority ones not. */
export const PRIORITIES = ['high', 'low'] as const;
export type Priority = (typeof PRIORITIES)[number];

/** What a child process runs: one system, one mode, one repetition. */
export interface RunConfig {
  system: SystemName;
  mode: SendMode;
  /** Tasks to send and process. */
  count: number;
  /** Bytes of the JSON payload of each task. */
  payloadBytes: number;
  /** Handlers in flight in the worker (the raw consumer's prefetch is this times the multiplier). */
  concurrency: number;
  window: number;
  batch: number;
  bulkWindow: number;
  /** Tasks per second in `paced` mode. */
  rate: number;
  priority: Priority;
  /** Queue name, key prefix or namespace of this run, unique to it. */
  name: string;
  /** Path of the Cogman sources to load (default: this repository's libs/cogman/src). */
  lib?: string;
  /** Cogman's prefetchMultiplier (default: Cogman's own default). */
  prefetchMultiplier?: number;
  /** raw: the consumer acks this many ms after a message arrives, as a worker with work to do. */
  rawAckDelayMs?: number;
  /** `producer` / `worker` split the Cogman run in two processes (scale, profiling). */
  role?: 'both' | 'producer' | 'worker';
}

/** Send latency, in milliseconds, over every call. */
export interface LatencySummary {
  calls: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

/** What a child process reports. Times are in milliseconds from the first send. */
export interface RunResult {
  config: RunConfig;
  /** Tasks processed, and tasks processed more than once. */
  completed: number;
  duplicates: number;
  /** Last send call resolved. */
  enqueueMs: number;
  /** Last task completed (acknowledged / moved to completed). */
  endToEndMs: number;
  enqueueRate: number;
  endToEndRate: number;
  latency: LatencySummary;
  /** Every send call's latency in ms (µs precision): the summary pools them over repetitions. */
  latencies: number[];
  /** Resident set size after start-up and its peak over the process' life, in MiB. */
  rssStartMb: number;
  rssPeakMb: number;
  /** CPU time of the process during the run, in ms. */
  cpuUserMs: number;
  cpuSystemMs: number;
  /** CPU time the Redis and RabbitMQ servers used during the run (shared: others count too). */
  serverCpuMs: { redis: number | null; rabbitmq: number | null };
  /** When the run's first send went and its last task finished (epoch ms, on this machine). */
  wallMs: { started: number; finished: number };
  /** The run on the monotonic clock CPU profiles use (µs), to leave start-up out of them. */
  clockUs: { from: number; to: number };
  /** System-specific facts (for Cogman: what `services()` reports about Mongo). */
  notes: Record<string, string | number | boolean | null>;
}

/** The line a child prints its result on. */
export const RESULT_PREFIX = 'BENCH_RESULT ';

/** The line a child prints once its system has started (and, a worker, consumes). */
export const READY_LINE = 'BENCH_READY';
