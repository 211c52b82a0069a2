import { setTimeout as sleep } from 'node:timers/promises';
import type { LatencySummary, RunConfig, RunResult } from '../support/config';
import { serverCpuSince, serverCpuMs } from '../support/server-cpu';
import { quantile } from '../support/stats';

/** The payload every system carries: the task's index, padded to the configured size. */
export interface BenchPayload {
  i: number;
  data: string;
}

/** Name of the benchmark's task (BullMQ job name, Cogman task name). */
export const TASK_NAME = 'bench-noop';

/** One system under test, as the load driver sees it. */
export interface BenchSystem {
  /** Connects and starts consuming; resolves once ready. */
  start(): Promise<void>;
  /** Sends one task; resolves once the system has accepted it (confirm, add resolved). */
  send(index: number): Promise<void>;
  /** Sends several tasks in one call. */
  sendBulk(indexes: number[]): Promise<void>;
  /** Resolves with the time (performance.now()) the last task finished. */
  drained(): Promise<number>;
  /** Closes every connection. */
  stop(): Promise<void>;
  notes(): RunResult['notes'];
}

export function payloadMaker(bytes: number): (i: number) => BenchPayload {
  // `{"i":12345,"data":""}` is about 22 bytes; the rest is padding.
  const data = 'x'.repeat(Math.max(0, bytes - 22));
  return (i) => ({ i, data });
}

/**
 * Counts completions by task index; `done` resolves once every task finished at least once.
 * Duplicates (a task finished twice) are counted, not hidden.
 */
export class CompletionTracker {
  completed = 0;
  duplicates = 0;
  lastAt = 0;
  readonly done: Promise<void>;
  private readonly seen: Uint8Array;
  private resolve!: () => void;

  constructor(readonly count: number) {
    this.seen = new Uint8Array(count);
    this.done = new Promise((resolve) => (this.resolve = resolve));
  }

  complete(index: number): void {
    if (this.seen[index]) {
      this.duplicates++;
      return;
    }
    this.seen[index] = 1;
    this.completed++;
    this.lastAt = performance.now();
    if (this.completed === this.count) this.resolve();
  }
}

/** Sends every task the way the mode says, waits for the last completion, and measures. */
export async function drive(
  system: BenchSystem,
  config: RunConfig,
  tracker: CompletionTracker,
): Promise<RunResult> {
  const rssStart = process.memoryUsage().rss;
  // A worker consumes from its start: what it finished before the clock started is noted.
  const completedAtStart = tracker.completed;
  const cpuStart = process.cpuUsage();
  const serversStart = serverCpuMs();
  const fromUs = Number(process.hrtime.bigint() / 1000n);
  const started = performance.now();
  // A worker-only process sends nothing: it drains what is queued.
  const latencies = config.role === 'worker' ? new Float64Array(0) : await sendAll(system, config);
  const enqueued = performance.now();
  const finished = await system.drained();
  const cpu = process.cpuUsage(cpuStart);
  const servers = serverCpuSince(serversStart);
  const toUs = Number(process.hrtime.bigint() / 1000n);
  // With --expose-gc (the scale benchmark): what stays reachable once the work is done.
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const heapAfterGcMb = gc ? process.memoryUsage().heapUsed / 2 ** 20 : null;
  const enqueueMs = enqueued - started;
  const endToEndMs = finished - started;
  return {
    config,
    completed: tracker.completed,
    duplicates: tracker.duplicates,
    enqueueMs,
    endToEndMs,
    enqueueRate: (config.count / enqueueMs) * 1000,
    endToEndRate: (config.count / endToEndMs) * 1000,
    latency: summarise(latencies),
    latencies: Array.from(latencies, (ms) => Math.round(ms * 1000) / 1000),
    rssStartMb: rssStart / 2 ** 20,
    rssPeakMb: process.resourceUsage().maxRSS / 1024,
    cpuUserMs: cpu.user / 1000,
    cpuSystemMs: cpu.system / 1000,
    serverCpuMs: servers,
    wallMs: {
      started: performance.timeOrigin + started,
      finished: performance.timeOrigin + finished,
    },
    clockUs: { from: fromUs, to: toUs },
    notes: { ...system.notes(), completedAtStart, heapAfterGcMb },
  };
}

/** Returns the latency of every send call, in ms. */
async function sendAll(system: BenchSystem, config: RunConfig): Promise<Float64Array> {
  const { count } = config;
  switch (config.mode) {
    case 'single': {
      const latencies = new Float64Array(count);
      let next = 0;
      const loop = async () => {
        while (next < count) {
          const index = next++;
          const began = performance.now();
          await system.send(index);
          latencies[index] = performance.now() - began;
        }
      };
      await Promise.all(Array.from({ length: Math.min(config.window, count) }, loop));
      return latencies;
    }
    case 'bulk': {
      const batches = Math.ceil(count / config.batch);
      const latencies = new Float64Array(batches);
      let next = 0;
      const loop = async () => {
        while (next < batches) {
          const batch = next++;
          const first = batch * config.batch;
          const indexes = range(first, Math.min(count, first + config.batch));
          const began = performance.now();
          await system.sendBulk(indexes);
          latencies[batch] = performance.now() - began;
        }
      };
      await Promise.all(Array.from({ length: Math.min(config.bulkWindow, batches) }, loop));
      return latencies;
    }
    case 'paced':
      return sendPaced(system, config);
  }
}

/**
 * Open loop: task i is sent at i / rate seconds, whether earlier sends have resolved or not, so
 * a slow answer shows as latency instead of slowing the senders down.
 */
async function sendPaced(system: BenchSystem, config: RunConfig): Promise<Float64Array> {
  const { count, rate } = config;
  const latencies = new Float64Array(count);
  let pending = 0;
  let failure: Error | undefined;
  let allSent = false;
  let resolveIdle!: () => void;
  const idle = new Promise<void>((resolve) => (resolveIdle = resolve));
  const started = performance.now();
  let sent = 0;
  while (sent < count && failure === undefined) {
    const due = Math.min(count, Math.floor(((performance.now() - started) * rate) / 1000) + 1);
    while (sent < due) {
      const index = sent++;
      const began = performance.now();
      pending++;
      system.send(index).then(
        () => {
          latencies[index] = performance.now() - began;
          if (--pending === 0 && allSent) resolveIdle();
        },
        (error: unknown) => {
          failure ??= error instanceof Error ? error : new Error(String(error));
          if (--pending === 0 && allSent) resolveIdle();
        },
      );
    }
    if (sent < count) await sleep(1);
  }
  allSent = true;
  if (pending > 0) await idle;
  if (failure !== undefined) throw failure;
  return latencies;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, k) => from + k);
}

function summarise(latencies: Float64Array): LatencySummary {
  const sorted = Float64Array.from(latencies).sort();
  let sum = 0;
  for (const value of sorted) sum += value;
  return {
    calls: sorted.length,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    max: sorted[sorted.length - 1] ?? NaN,
    mean: sum / sorted.length,
  };
}

/** Waits until `check` holds, looking again at every turn of the event loop. */
export async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setImmediate(resolve));
}
