import { get, apiBase, apiKey, type Overview } from './api';

/** How the live overview reaches the page now. */
export type LiveMode = 'stream' | 'polling' | 'paused' | 'offline';

type Listener = (overview: Overview | null, mode: LiveMode) => void;

/**
 * The live overview: one server-sent event stream per tab (over fetch, so that it carries the
 * API key), falling back to polling when streaming fails; paused while the tab is hidden.
 */
class Live {
  private listeners = new Set<Listener>();
  private latest: Overview | null = null;
  private mode: LiveMode = 'paused';
  private abort?: AbortController;
  private pollTimer?: number;
  private failures = 0;

  constructor() {
    document.addEventListener('visibilitychange', () => this.update());
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    listener(this.latest, this.mode);
    this.update();
    return () => {
      this.listeners.delete(listener);
      this.update();
    };
  }

  get overview(): Overview | null {
    return this.latest;
  }

  /** Starts again (after the API key was given, or on demand). */
  restart(): void {
    this.stop();
    this.failures = 0;
    this.update();
  }

  private update(): void {
    const wanted = this.listeners.size > 0 && document.visibilityState !== 'hidden';
    if (!wanted) {
      if (this.mode !== 'paused') {
        this.stop();
        this.set(this.latest, 'paused');
      }
      return;
    }
    if (this.abort || this.pollTimer !== undefined) return;
    if (this.failures >= 2) this.poll();
    else void this.stream();
  }

  private stop(): void {
    this.abort?.abort();
    this.abort = undefined;
    if (this.pollTimer !== undefined) clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
  }

  private set(overview: Overview | null, mode: LiveMode): void {
    this.latest = overview;
    this.mode = mode;
    for (const listener of this.listeners) listener(overview, mode);
  }

  private async stream(): Promise<void> {
    const abort = new AbortController();
    this.abort = abort;
    try {
      const headers: Record<string, string> = {
        accept: 'text/event-stream',
        'x-cogman-dashboard': '1',
      };
      const key = apiKey();
      if (key) headers['x-api-key'] = key;
      const response = await fetch(`${apiBase}overview/stream`, {
        headers,
        signal: abort.signal,
        cache: 'no-store',
      });
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const event = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = event
            .split('\n')
            .filter((line) => line.startsWith('data:'))
            .map((line) => line.slice(5).trimStart())
            .join('\n');
          if (data) {
            this.failures = 0;
            this.set(JSON.parse(data) as Overview, 'stream');
          }
        }
      }
      throw new Error('the stream ended');
    } catch {
      if (abort.signal.aborted) return;
      this.failures++;
      this.abort = undefined;
      // After two failed streams, poll instead (a proxy that buffers, an old server).
      window.setTimeout(() => this.update(), 1000);
      if (this.failures >= 2) this.set(this.latest, 'polling');
    }
  }

  private poll(): void {
    const run = async () => {
      let interval = 5000;
      try {
        const overview = await get<Overview>('overview');
        interval = Math.max(2000, overview.interval);
        this.set(overview, 'polling');
      } catch {
        this.set(this.latest, 'offline');
      }
      if (this.pollTimer === undefined) return;
      this.pollTimer = window.setTimeout(() => void run(), interval);
    };
    this.pollTimer = window.setTimeout(() => void run(), 0);
  }
}

export const live = new Live();
