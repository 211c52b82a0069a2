/**
 * How one delivery is stopped: by shutdown, its attempt's timeout or a cancellation, whichever
 * comes first. The handler's `AbortSignal` is made only when the handler reads it (making one and
 * listening to it costs more than running a short task), already aborted if the delivery was.
 */
export class TaskAbort {
  private controller?: AbortController;
  private listeners: ((reason: unknown) => void)[] = [];
  private abortReason: unknown;
  private done = false;

  get aborted(): boolean {
    return this.done;
  }

  /** Why it was aborted (a `WorkerShutdownError`, `TaskTimeoutError` or `TaskCancelledError`). */
  get reason(): unknown {
    return this.abortReason;
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.done) this.controller.abort(this.abortReason);
    }
    return this.controller.signal;
  }

  /** Aborts once; later calls are ignored. */
  abort(reason: unknown): void {
    if (this.done) return;
    this.done = true;
    this.abortReason = reason;
    this.controller?.abort(reason);
    for (const listener of this.listeners.splice(0)) listener(reason);
  }

  /** Calls `listener` when aborted (at once if it is); returns a function that stops listening. */
  onAbort(listener: (reason: unknown) => void): () => void {
    if (this.done) {
      listener(this.abortReason);
      return () => {};
    }
    this.listeners.push(listener);
    return () => {
      const index = this.listeners.indexOf(listener);
      if (index >= 0) this.listeners.splice(index, 1);
    };
  }
}
