import { Fragment } from 'preact';
import { useState } from 'preact/hooks';
import { ApiError, get, post, settings, taskPath, type TaskRecord } from '../api';
import { Confirm, ErrorBox, notify, Payload, Status } from '../components';
import { dateTime, duration } from '../format';
import { useLive, useLoad } from '../hooks';
import { href, navigate } from '../router';

interface Detail {
  task: TaskRecord;
  attempts: TaskRecord[];
}

const FINISHED = new Set(['retry', 'success', 'failed', 'cancelled']);

export function TaskPage({ id }: { id: string }) {
  const { overview } = useLive();
  // The task and its attempts are read again with each live snapshot: a new attempt shows up.
  const detail = useLoad(() => get<Detail>(taskPath(id)), id, overview?.at);
  const [copying, setCopying] = useState(false);
  const [confirming, setConfirming] = useState<'cancel' | null>(null);
  if (detail.error instanceof ApiError && detail.error.status === 404) {
    return (
      <div class="page">
        <h1>Task not found</h1>
        <p>
          No task <code>{id}</code> in Redis or the archive. <a href={href('/tasks')}>All tasks</a>
        </p>
      </div>
    );
  }
  if (!detail.data)
    return detail.error ? <ErrorBox error={detail.error} /> : <p class="muted">Loading…</p>;
  const { task, attempts } = detail.data;
  const current = attempts[attempts.length - 1] ?? task;
  const act = async (action: 'retry' | 'cancel' | 'run-now') => {
    try {
      const record = await post<TaskRecord>(`${taskPath(current.taskId)}/${action}`);
      notify(
        action === 'retry'
          ? `Retrying: attempt ${record.attempt}`
          : action === 'cancel'
            ? 'Cancelled'
            : 'Sent to its queue now',
      );
      detail.reload();
    } catch (error) {
      notify(error instanceof Error ? error.message : String(error), 'error');
    }
  };
  return (
    <div class="page">
      <p class="crumbs">
        <a href={href('/tasks')}>Tasks</a> / {task.name}
      </p>
      <div class="title-row">
        <h1>
          {task.name} <Status status={current.status} />
        </h1>
        {!settings.readOnly && (
          <div class="actions">
            {current.status === 'failed' && (
              <button type="button" class="primary" onClick={() => void act('retry')}>
                Retry
              </button>
            )}
            {current.status === 'scheduled' && (
              <button type="button" onClick={() => void act('run-now')}>
                Run now
              </button>
            )}
            {!FINISHED.has(current.status) && (
              <button type="button" onClick={() => setConfirming('cancel')}>
                Cancel
              </button>
            )}
            <button type="button" onClick={() => setCopying(true)}>
              Send a copy
            </button>
          </div>
        )}
      </div>
      <dl class="facts">
        <dt>Task id</dt>
        <dd class="mono">{task.taskId}</dd>
        <dt>First attempt</dt>
        <dd class="mono">
          <a href={href(`/tasks/${encodeURIComponent(task.originalTaskId)}`)}>
            {task.originalTaskId}
          </a>
        </dd>
        <dt>Priority</dt>
        <dd>{task.priority}</dd>
        <dt>Primary key</dt>
        <dd class="mono">{task.primaryKey ?? '—'}</dd>
        <dt>Retries allowed</dt>
        <dd>{current.retry}</dd>
        <dt>Due</dt>
        <dd>{dateTime(current.runAt)}</dd>
      </dl>
      <section class="card" aria-labelledby="attempts-title">
        <h2 id="attempts-title">Attempts ({attempts.length})</h2>
        <div class="table-wrap">
          <table class="table attempts">
            <thead>
              <tr>
                <th scope="col" class="num">
                  Attempt
                </th>
                <th scope="col">Status</th>
                <th scope="col">Started</th>
                <th scope="col" class="num">
                  Duration
                </th>
                <th scope="col" class="num">
                  Waited before it
                </th>
                <th scope="col">Error</th>
              </tr>
            </thead>
            <tbody>
              {attempts.map((attempt) => (
                <tr
                  key={attempt.taskId}
                  data-attempt={attempt.attempt}
                  aria-current={attempt.taskId === task.taskId ? 'true' : undefined}
                >
                  <td class="num">
                    <a href={href(`/tasks/${encodeURIComponent(attempt.taskId)}`)}>
                      {attempt.attempt}
                    </a>
                  </td>
                  <td>
                    <Status status={attempt.status} />
                  </td>
                  <td>{dateTime(attempt.startedAt)}</td>
                  <td class="num">{duration(attempt.duration)}</td>
                  <td class="num">{duration(waited(attempt))}</td>
                  <td class="error-cell">{attempt.failError ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>
      <section class="card" aria-labelledby="timeline-title">
        <h2 id="timeline-title">Timeline</h2>
        <ol class="timeline">
          {timeline(attempts).map((event, index) => (
            <li key={index}>
              <time dateTime={event.at}>{dateTime(event.at)}</time> <span>{event.text}</span>
            </li>
          ))}
        </ol>
      </section>
      <div class="two">
        <section class="card" aria-labelledby="payload-title">
          <h2 id="payload-title">Payload</h2>
          <Payload encoding={task.payloadEncoding} payload={task.payload} />
        </section>
        <section class="card" aria-labelledby="headers-title">
          <h2 id="headers-title">Headers</h2>
          {Object.keys(task.headers ?? {}).length === 0 ? (
            <p class="muted">None</p>
          ) : (
            <dl class="facts">
              {Object.entries(task.headers).map(([name, value]) => (
                <Fragment key={name}>
                  <dt>{name}</dt>
                  <dd class="mono">{value}</dd>
                </Fragment>
              ))}
            </dl>
          )}
        </section>
      </div>
      {confirming && (
        <Confirm
          title="Cancel this task?"
          confirmLabel="Cancel the task"
          danger
          onConfirm={() => act('cancel')}
          onClose={() => setConfirming(null)}
        >
          <p>It will not run (a running handler is told to stop).</p>
        </Confirm>
      )}
      {copying && <SendCopy task={task} onClose={() => setCopying(false)} />}
    </div>
  );
}

function waited(attempt: TaskRecord): number | null {
  if (!attempt.startedAt) return null;
  const from = attempt.runAt ?? attempt.createdAt;
  return Math.max(0, new Date(attempt.startedAt).getTime() - new Date(from).getTime());
}

/** The status changes of every attempt, as far as the records date them. */
function timeline(attempts: TaskRecord[]): { at: string; text: string }[] {
  const events: { at: string; text: string }[] = [];
  for (const attempt of attempts) {
    const n = `Attempt ${attempt.attempt}`;
    events.push({ at: attempt.createdAt, text: `${n} created` });
    if (attempt.runAt && attempt.runAt !== attempt.createdAt) {
      events.push({ at: attempt.runAt, text: `${n} due (scheduled)` });
    }
    if (attempt.startedAt) events.push({ at: attempt.startedAt, text: `${n} started` });
    const end: Record<string, string> = {
      success: 'succeeded',
      failed: `failed${attempt.failError ? `: ${attempt.failError}` : ''}`,
      retry: `failed, retried${attempt.failError ? `: ${attempt.failError}` : ''}`,
      cancelled: 'cancelled',
      queued: 'queued',
      in_progress: 'running',
      scheduled: 'scheduled',
      initiated: 'waiting for the broker',
    };
    events.push({ at: attempt.updatedAt, text: `${n} ${end[attempt.status] ?? attempt.status}` });
  }
  return events.sort((a, b) => a.at.localeCompare(b.at));
}

/** Clone, edit, send: a new task from this one's name, payload and settings. */
function SendCopy({ task, onClose }: { task: TaskRecord; onClose: () => void }) {
  const initial = JSON.stringify(
    {
      name: task.name,
      payload: task.payloadEncoding === 'json' ? task.payload : null,
      priority: task.priority,
      retry: task.retry,
      ...(task.primaryKey ? { primaryKey: task.primaryKey } : {}),
      ...(Object.keys(task.headers ?? {}).length ? { headers: task.headers } : {}),
    },
    null,
    2,
  );
  const [text, setText] = useState(initial);
  const [error, setError] = useState<string | null>(null);
  return (
    <Confirm
      title="Send a copy"
      confirmLabel="Send"
      onClose={onClose}
      onConfirm={async () => {
        try {
          const body = JSON.parse(text) as unknown;
          const record = await post<TaskRecord>('tasks', body);
          notify(`Sent ${record.name}`);
          navigate(href(`/tasks/${encodeURIComponent(record.taskId)}`));
        } catch (reason) {
          const message = reason instanceof Error ? reason.message : String(reason);
          setError(message);
          notify(message, 'error');
        }
      }}
    >
      <label class="block">
        The task to send (JSON, as POST /tasks takes it)
        <textarea
          rows={14}
          class="mono"
          value={text}
          onInput={(e) => setText(e.currentTarget.value)}
        />
      </label>
      {task.payloadEncoding === 'base64' && (
        <p class="muted">A binary payload cannot be edited here.</p>
      )}
      {error && <p class="error-text">{error}</p>}
    </Confirm>
  );
}
