/** How long each action on an isolated service took, for reports and benchmarks (not asserts). */
export class Timings {
  readonly entries: { action: string; ms: number }[] = [];

  async measure<T>(action: string, run: () => Promise<T>): Promise<T> {
    const began = performance.now();
    try {
      return await run();
    } finally {
      this.entries.push({ action, ms: Math.round(performance.now() - began) });
    }
  }

  /** `start 5210 ms, stopApp 690 ms, ...` */
  toString(): string {
    return this.entries.map(({ action, ms }) => `${action} ${ms} ms`).join(', ');
  }
}
