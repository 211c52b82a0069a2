import { useEffect, useRef, useState } from 'preact/hooks';
import type { LiveMode } from './live';
import { live } from './live';
import type { Overview } from './api';

/** The live overview and how it arrives. */
export function useLive(): { overview: Overview | null; mode: LiveMode } {
  const [state, setState] = useState<{ overview: Overview | null; mode: LiveMode }>({
    overview: live.overview,
    mode: 'paused',
  });
  useEffect(() => live.subscribe((overview, mode) => setState({ overview, mode })), []);
  return state;
}

export interface Loaded<T> {
  data: T | null;
  error: unknown;
  loading: boolean;
  reload: () => void;
}

/**
 * Loads something from the API when `key` changes; with `refreshOn`, again each time that value
 * changes (a new live snapshot), without showing a loading state.
 */
export function useLoad<T>(load: () => Promise<T>, key: string, refreshOn?: unknown): Loaded<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const generation = useRef(0);
  const run = (quiet: boolean) => {
    const mine = ++generation.current;
    if (!quiet) setLoading(true);
    load().then(
      (value) => {
        if (mine !== generation.current) return;
        setData(value);
        setError(null);
        setLoading(false);
      },
      (reason: unknown) => {
        if (mine !== generation.current) return;
        setError(reason);
        setLoading(false);
      },
    );
  };
  useEffect(() => {
    setData(null);
    run(false);
  }, [key]);
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    if (refreshOn !== undefined && refreshOn !== null) run(true);
  }, [refreshOn]);
  // Read again in place: what is shown stays until the new answer replaces it.
  return { data, error, loading, reload: () => run(true) };
}
