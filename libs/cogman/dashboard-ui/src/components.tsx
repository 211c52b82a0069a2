import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { TaskStatus } from './api';

const LABELS: Record<TaskStatus, string> = {
  initiated: 'Initiated',
  scheduled: 'Scheduled',
  queued: 'Queued',
  in_progress: 'Running',
  retry: 'Retried',
  success: 'Succeeded',
  failed: 'Failed',
  cancelled: 'Cancelled',
};

/** One path per status, drawn in a 16×16 box: the status is never told by colour alone. */
const ICONS: Record<TaskStatus, string> = {
  initiated: 'M8 2a6 6 0 1 0 0 12A6 6 0 0 0 8 2zm0 2a4 4 0 1 1 0 8 4 4 0 0 1 0-8z',
  scheduled: 'M8 1.5a6.5 6.5 0 1 0 0 13 6.5 6.5 0 0 0 0-13zM7 4h2v4.2l2.6 1.6-1 1.7L7 9.3z',
  queued: 'M2 3h12v2H2zm0 4h12v2H2zm0 4h8v2H2z',
  in_progress: 'M4 2.5v11l9-5.5z',
  retry: 'M8 2a6 6 0 0 1 5.7 4.2H16l-3 3.5-3-3.5h1.6A4 4 0 1 0 12 10l1.7 1A6 6 0 1 1 8 2z',
  success: 'M6.2 11.2 2.8 7.8 1.4 9.2l4.8 4.8L14.6 5.6l-1.4-1.4z',
  failed:
    'M3.5 2.1 8 6.6l4.5-4.5 1.4 1.4L9.4 8l4.5 4.5-1.4 1.4L8 9.4l-4.5 4.5-1.4-1.4L6.6 8 2.1 3.5z',
  cancelled:
    'M8 1.5a6.5 6.5 0 1 0 0 13 6.5 6.5 0 0 0 0-13zM3.5 8a4.5 4.5 0 0 1 7.1-3.7l-6.3 6.3A4.5 4.5 0 0 1 3.5 8zm1.9 3.7 6.3-6.3a4.5 4.5 0 0 1-6.3 6.3z',
};

export function statusLabel(status: TaskStatus): string {
  return LABELS[status] ?? status;
}

export function Status({ status }: { status: TaskStatus }) {
  return (
    <span class={`status status-${status}`} data-status={status}>
      <svg viewBox="0 0 16 16" width="14" height="14" aria-hidden="true" focusable="false">
        <path d={ICONS[status] ?? ICONS.initiated} fill="currentColor" fill-rule="evenodd" />
      </svg>
      <span>{statusLabel(status)}</span>
    </span>
  );
}

/** Whether something is paused or running, by an icon and a word (never by colour alone). */
export function RunState({ paused, label }: { paused: boolean; label?: string }) {
  return (
    <span class={`run-state ${paused ? 'run-paused' : 'run-running'}`} data-paused={String(paused)}>
      <svg viewBox="0 0 16 16" width="14" height="14" aria-hidden="true" focusable="false">
        <path d={paused ? 'M4 2.5h3v11H4zm5 0h3v11H9z' : 'M4 2.5v11l9-5.5z'} fill="currentColor" />
      </svg>
      <span>{label ?? (paused ? 'Paused' : 'Running')}</span>
    </span>
  );
}

export function Level({ level }: { level: 'error' | 'warning' | 'info' }) {
  const icon = level === 'error' ? '✕' : level === 'warning' ? '!' : 'i';
  return (
    <span class={`level level-${level}`}>
      <span class="level-icon" aria-hidden="true">
        {icon}
      </span>
      <span class="visually-hidden">{level}: </span>
    </span>
  );
}

/** A JSON value as a tree: objects and arrays fold. */
export function JsonTree({ value, name }: { value: unknown; name?: string }) {
  const label = name === undefined ? null : <span class="json-key">{name}: </span>;
  if (value === null || typeof value !== 'object') {
    return (
      <div class="json-leaf">
        {label}
        <span class={`json-${value === null ? 'null' : typeof value}`}>
          {JSON.stringify(value)}
        </span>
      </div>
    );
  }
  const entries: (readonly [string, unknown])[] = Array.isArray(value)
    ? (value as unknown[]).map((item, index) => [String(index), item] as const)
    : Object.entries(value as Record<string, unknown>);
  const [open, close] = Array.isArray(value) ? ['[', ']'] : ['{', '}'];
  return (
    <details class="json-node" open>
      <summary>
        {label}
        {open}
        <span class="json-count">
          {entries.length} {Array.isArray(value) ? 'items' : 'keys'}
        </span>
        {entries.length === 0 ? close : ''}
      </summary>
      <div class="json-children">
        {entries.map(([key, item]) => (
          <JsonTree key={key} name={key} value={item} />
        ))}
      </div>
      {entries.length > 0 && <div>{close}</div>}
    </details>
  );
}

/** Bytes (base64) as a hex dump of their first 512 bytes. */
export function HexPreview({ base64 }: { base64: string }) {
  let bytes: Uint8Array;
  try {
    bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  } catch {
    return <p>Not base64.</p>;
  }
  const rows: string[] = [];
  const shown = bytes.subarray(0, 512);
  for (let offset = 0; offset < shown.length; offset += 16) {
    const line = shown.subarray(offset, offset + 16);
    const hex = Array.from(line, (b) => b.toString(16).padStart(2, '0')).join(' ');
    const ascii = Array.from(line, (b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : '.')).join(
      '',
    );
    rows.push(`${offset.toString(16).padStart(6, '0')}  ${hex.padEnd(47)}  ${ascii}`);
  }
  return (
    <div>
      <p class="muted">
        {bytes.length} bytes{bytes.length > 512 ? ' (first 512 shown)' : ''}, base64
      </p>
      <pre class="hex">{rows.join('\n')}</pre>
    </div>
  );
}

export function Payload({ encoding, payload }: { encoding: 'json' | 'base64'; payload: unknown }) {
  return encoding === 'base64' ? (
    <HexPreview base64={String(payload)} />
  ) : (
    <div class="json">
      <JsonTree value={payload} />
    </div>
  );
}

/**
 * A modal dialog (the native `<dialog>`: focus moves into it, Escape closes it) asking to
 * confirm an action before anything happens.
 */
export function Confirm(props: {
  title: string;
  children: ComponentChildren;
  confirmLabel: string;
  danger?: boolean;
  onConfirm: () => void | Promise<void>;
  onClose: () => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    const dialog = ref.current!;
    dialog.showModal();
    const onClose = () => props.onClose();
    dialog.addEventListener('close', onClose);
    return () => dialog.removeEventListener('close', onClose);
  }, []);
  return (
    <dialog ref={ref} class="dialog" aria-labelledby="confirm-title">
      <h2 id="confirm-title">{props.title}</h2>
      <div class="dialog-body">{props.children}</div>
      <div class="dialog-actions">
        <button type="button" onClick={() => ref.current?.close()}>
          Cancel
        </button>
        <button
          type="button"
          class={props.danger ? 'danger' : 'primary'}
          disabled={busy}
          onClick={() => {
            setBusy(true);
            void Promise.resolve()
              .then(() => props.onConfirm())
              .catch(() => {})
              .finally(() => {
                setBusy(false);
                ref.current?.close();
              });
          }}
        >
          {props.confirmLabel}
        </button>
      </div>
    </dialog>
  );
}

/** Messages after an action; announced to screen readers. */
let pushNotice: (text: string, kind?: 'ok' | 'error') => void = () => {};
export function notify(text: string, kind: 'ok' | 'error' = 'ok'): void {
  pushNotice(text, kind);
}

export function Notices() {
  const [items, setItems] = useState<{ id: number; text: string; kind: 'ok' | 'error' }[]>([]);
  useEffect(() => {
    let next = 0;
    pushNotice = (text, kind = 'ok') => {
      const id = next++;
      setItems((list) => [...list.slice(-3), { id, text, kind }]);
      window.setTimeout(() => setItems((list) => list.filter((item) => item.id !== id)), 6000);
    };
  }, []);
  return (
    <div class="notices" role="status" aria-live="polite">
      {items.map((item) => (
        <div key={item.id} class={`notice notice-${item.kind}`}>
          {item.text}
        </div>
      ))}
    </div>
  );
}

export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  const message =
    error instanceof Error
      ? error.message
      : typeof error === 'string'
        ? error
        : JSON.stringify(error);
  return (
    <div class="error-box" role="alert">
      <Level level="error" /> {message}
    </div>
  );
}
