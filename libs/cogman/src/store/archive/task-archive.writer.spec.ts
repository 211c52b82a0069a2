import type { LoggerService } from '@nestjs/common';
import { ArchiveBufferFullError, ArchiveUnavailableError } from '../../errors';
import type { TaskStatusChange } from '../task-log.store';
import { TaskArchiveWriter, type ArchiveSink } from './task-archive.writer';

class Logs implements LoggerService {
  readonly warnings: string[] = [];
  readonly logs: string[] = [];
  log(message: string) {
    this.logs.push(message);
  }
  warn(message: string) {
    this.warnings.push(message);
  }
  error() {}
}

const change = (n: number): TaskStatusChange => ({
  taskId: `t${n}`,
  status: 'queued',
  at: new Date(n),
});

/** A sink that fails while `down` and records the batches it writes. */
class FakeSink {
  down = false;
  refuse = new Set<string>();
  readonly batches: string[][] = [];
  calls = 0;
  /** When set, each call waits for it (to hold a batch in flight). */
  gate?: Promise<void>;

  readonly sink: ArchiveSink = async (changes) => {
    this.calls++;
    await this.gate;
    if (this.down) throw new Error('connection refused');
    this.batches.push(changes.map((c) => c.taskId));
    const failures = new Map<string, Error>();
    for (const c of changes) if (this.refuse.has(c.taskId)) failures.set(c.taskId, new Error('no'));
    return failures;
  };

  get written(): string[] {
    return this.batches.flat();
  }
}

function writer(sink: FakeSink, logs = new Logs(), bufferSize = 100) {
  return new TaskArchiveWriter(sink.sink, {
    bufferSize,
    batchSize: 10,
    batchDelay: 5,
    retryDelay: { min: 1, max: 4 },
    logger: logs,
  });
}

describe('TaskArchiveWriter', () => {
  it('writes changes in batches, in arrival order, resolving each once written', async () => {
    const sink = new FakeSink();
    const w = writer(sink);
    await Promise.all(Array.from({ length: 25 }, (_, i) => w.write(change(i))));
    expect(sink.written).toEqual(Array.from({ length: 25 }, (_, i) => `t${i}`));
    expect(Math.max(...sink.batches.map((batch) => batch.length))).toBeLessThanOrEqual(10);
    expect(w.backlog).toBe(0);
  });

  it('holds changes while the sink fails and writes all of them, in order, once it works', async () => {
    const sink = new FakeSink();
    const logs = new Logs();
    const w = writer(sink, logs);
    sink.down = true;
    const writes = Array.from({ length: 15 }, (_, i) => w.write(change(i)));
    while (sink.calls < 3) await new Promise((resolve) => setImmediate(resolve));
    expect(w.backlog).toBe(15);
    sink.down = false;
    w.wake();
    await Promise.all(writes);
    expect(sink.written).toEqual(Array.from({ length: 15 }, (_, i) => `t${i}`));
    expect(logs.warnings.filter((w) => w.includes('write failed'))).toHaveLength(1);
    expect(logs.logs.some((line) => line.includes('resumed'))).toBe(true);
  });

  it('refuses changes past the buffer size, with one warning, and counts them when room is back', async () => {
    const sink = new FakeSink();
    const logs = new Logs();
    const w = writer(sink, logs, 12);
    let open!: () => void;
    sink.gate = new Promise((resolve) => (open = resolve));
    const accepted = Array.from({ length: 12 }, (_, i) => w.write(change(i)));
    const refused = Array.from({ length: 5 }, (_, i) => w.write(change(100 + i)));
    for (const attempt of refused)
      await expect(attempt).rejects.toBeInstanceOf(ArchiveBufferFullError);
    expect(logs.warnings.filter((line) => line.includes('buffer is full'))).toHaveLength(1);
    expect(w.backlog).toBe(12);
    open();
    await Promise.all(accepted);
    expect(
      logs.warnings.some((line) => line.includes('5 status change(s) were not archived')),
    ).toBe(true);
    expect(sink.written).toHaveLength(12);
    await w.write(change(200));
    expect(sink.written.at(-1)).toBe('t200');
  });

  it('rejects only the changes of a task the sink gives up', async () => {
    const sink = new FakeSink();
    sink.refuse.add('t1');
    const w = writer(sink);
    const results = await Promise.allSettled([0, 1, 2].map((n) => w.write(change(n))));
    expect(results.map((result) => result.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
  });

  it('flushes within a timeout, then gives up what is left when closed', async () => {
    const sink = new FakeSink();
    const w = writer(sink);
    await expect(w.flush(10)).resolves.toBe(true);
    const written = w.write(change(1));
    await expect(w.flush(1_000)).resolves.toBe(true);
    await written;

    sink.down = true;
    const stuck = w.write(change(2));
    await expect(w.flush(30)).resolves.toBe(false);
    expect(w.close()).toBe(1);
    await expect(stuck).rejects.toBeInstanceOf(ArchiveUnavailableError);
    await expect(w.write(change(3))).rejects.toBeInstanceOf(ArchiveUnavailableError);
  });
});
