/** The dashboard's only way to the server: Cogman's public REST API, relative to the page. */

export type TaskStatus =
  | 'initiated'
  | 'scheduled'
  | 'queued'
  | 'in_progress'
  | 'retry'
  | 'success'
  | 'failed'
  | 'cancelled';

export const STATUSES: TaskStatus[] = [
  'initiated',
  'scheduled',
  'queued',
  'in_progress',
  'retry',
  'success',
  'failed',
  'cancelled',
];

export interface TaskRecord {
  taskId: string;
  name: string;
  originalTaskId: string;
  primaryKey: string | null;
  retry: number;
  attempt: number;
  priority: 'high' | 'low';
  headers: Record<string, string>;
  payloadEncoding: 'json' | 'base64';
  payload: unknown;
  status: TaskStatus;
  failError: string | null;
  duration: number | null;
  startedAt: string | null;
  runAt: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface TaskList {
  items: TaskRecord[];
  total: number;
  nextCursor: string | null;
  limit: number;
}

export interface QueueState {
  name: string;
  kind: 'high' | 'low' | 'dead-letter';
  ready: number | null;
  unacked: number | null;
  consumers: number | null;
  error?: string;
}

export interface Worker {
  id: string;
  host: string;
  pid: number;
  reportedAt: string;
  startedAt: string | null;
  activeTasks: number | null;
  highPriorityConcurrency: number | null;
  lowPriorityConcurrency: number | null;
  held: Record<string, number>;
}

export interface Warning {
  level: 'error' | 'warning' | 'info';
  code: string;
  message: string;
}

export type Priority = 'high' | 'low';

/** Whether each priority is paused (`GET /queues/pauses`), and since when. */
export type Pauses = Record<Priority, { paused: boolean; since: string | null }>;

export interface Overview {
  at: string;
  queues: QueueState[] | null;
  queuesError?: string;
  workers: Worker[] | null;
  /** Null when Redis could not be read (or from a server that does not tell). */
  pauses?: Pauses | null;
  deadLetters: number | null;
  offlineTasks: number;
  pendingRedisWrites: number;
  archive: boolean;
  services: { broker: boolean; redis: boolean; mongo: boolean | null };
  warnings: Warning[];
  interval: number;
}

export interface DeadLetter {
  key: string;
  taskId: string | null;
  taskName: string | null;
  reason: string | null;
  detail: string | null;
  queue: string | null;
  deadLetteredAt: string | null;
  contentType: string | null;
  size: number;
  payloadEncoding: 'json' | 'base64';
  payload: unknown;
  headers: Record<string, unknown>;
}

/** A recurring schedule (`GET /schedules`). */
export interface Schedule {
  id: string;
  name: string;
  cron?: string;
  timezone?: string;
  every?: number;
  missed?: 'once' | 'skip';
  priority?: Priority;
  source: 'code' | 'api';
  paused: boolean;
  nextRunAt: string | null;
  lastRunAt: string | null;
  lastTask: { taskId: string; status: TaskStatus | null } | null;
}

export interface CountBucket {
  from: string;
  to: string;
  total: number;
  counts: Record<TaskStatus, number>;
}

/** An answer of the API that is not a success. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Settings the server writes into the page (a meta tag: no inline script). */
export const settings: { readOnly: boolean; apiKey: boolean } = (() => {
  const meta = document.querySelector<HTMLMetaElement>('meta[name="cogman-dashboard"]');
  try {
    return { readOnly: false, apiKey: false, ...(JSON.parse(meta?.content ?? '{}') as object) };
  } catch {
    return { readOnly: false, apiKey: false };
  }
})();

/** The REST API: the page is served at `<api>/dashboard/`, whatever prefix or proxy is before it. */
export const apiBase = new URL('../', document.baseURI).href;

const KEY_STORAGE = 'cogman-dashboard-api-key';
const keyListeners = new Set<() => void>();

export function apiKey(): string | null {
  return sessionStorage.getItem(KEY_STORAGE);
}

/** Kept for this browser session only. */
export function setApiKey(key: string | null): void {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
  for (const listener of keyListeners) listener();
}

/** Calls `listener` when a key is needed (401) or given. */
export function onKeyChange(listener: () => void): () => void {
  keyListeners.add(listener);
  return () => keyListeners.delete(listener);
}

let keyNeeded = settings.apiKey && apiKey() === null;
export function isKeyNeeded(): boolean {
  return keyNeeded;
}

function headers(json: boolean): Record<string, string> {
  const result: Record<string, string> = { 'x-cogman-dashboard': '1', accept: 'application/json' };
  const key = apiKey();
  if (key) result['x-api-key'] = key;
  if (json) result['content-type'] = 'application/json';
  return result;
}

async function request<T>(
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body?: unknown,
): Promise<T> {
  const json = method === 'POST';
  const response = await fetch(apiBase + path, {
    method,
    headers: headers(json),
    // Unsafe requests are JSON only, with a header a cross-site form cannot set.
    body: json ? JSON.stringify(body ?? {}) : undefined,
    credentials: 'same-origin',
    cache: 'no-store',
  });
  const text = await response.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!response.ok) {
    const error = (parsed ?? {}) as { code?: string; message?: string };
    if (response.status === 401) {
      keyNeeded = true;
      if (apiKey()) sessionStorage.removeItem(KEY_STORAGE);
      for (const listener of keyListeners) listener();
    }
    throw new ApiError(
      response.status,
      error.code ?? `HTTP_${response.status}`,
      error.message ?? `${response.status} ${response.statusText}`,
    );
  }
  return parsed as T;
}

/** Gives the key and checks it against the API. */
export async function login(key: string): Promise<void> {
  setApiKey(key);
  await request('GET', 'ping');
  keyNeeded = false;
  for (const listener of keyListeners) listener();
}

export const get = <T>(path: string): Promise<T> => request<T>('GET', path);
export const post = <T>(path: string, body?: unknown): Promise<T> => request<T>('POST', path, body);
export const remove = (path: string): Promise<void> => request<void>('DELETE', path);

/** A query string of the defined values (lists joined by commas). */
export function query(
  params: Record<string, string | number | string[] | undefined | null>,
): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === '') continue;
    if (Array.isArray(value)) {
      if (value.length > 0) search.set(name, value.join(','));
    } else search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

export const taskPath = (id: string) => `tasks/${encodeURIComponent(id)}`;
export const schedulePath = (id: string) => `schedules/${encodeURIComponent(id)}`;
