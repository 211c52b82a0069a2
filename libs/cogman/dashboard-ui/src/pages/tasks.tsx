import { useEffect, useState } from 'preact/hooks';
import {
  ApiError,
  get,
  post,
  query,
  settings,
  STATUSES,
  taskPath,
  type TaskList,
  type TaskRecord,
  type TaskStatus,
} from '../api';
import { Confirm, ErrorBox, notify, Status, statusLabel } from '../components';
import { ago, dateTime, duration, fromLocalInput, toLocalInput } from '../format';
import { useLive, useLoad } from '../hooks';
import { href, navigate } from '../router';

/** Filters of the listing, as they are in the URL. */
interface Filters {
  status: TaskStatus[];
  name?: string;
  priority?: string;
  primaryKey?: string;
  error?: string;
  from?: string;
  to?: string;
  order?: string;
}

function filtersOf(params: URLSearchParams): Filters {
  const text = (name: string) => params.get(name) || undefined;
  return {
    status: (params.get('status') ?? '')
      .split(',')
      .filter((s): s is TaskStatus => (STATUSES as string[]).includes(s)),
    name: text('name'),
    priority: text('priority'),
    primaryKey: text('primaryKey'),
    error: text('error'),
    from: text('from'),
    to: text('to'),
    order: text('order'),
  };
}

/** How often an open listing is read again (ms). */
const LIST_REFRESH = 10_000;

type Pending =
  | { action: 'retry' | 'cancel'; scope: 'selected'; ids: string[] }
  | { action: 'retry' | 'cancel'; scope: 'filter'; total: number };

export function TasksPage({ params }: { params: URLSearchParams }) {
  const filters = filtersOf(params);
  const cursor = params.get('cursor') ?? undefined;
  const listKey = params.toString();
  const { overview } = useLive();
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [pending, setPending] = useState<Pending | null>(null);
  const [lookup, setLookup] = useState('');
  // Records an action on a row answered with, shown until the listing is read again.
  const [updated, setUpdated] = useState<Map<string, TaskRecord>>(new Map());
  // Re-read the page every LIST_REFRESH of live snapshots: new tasks and changed statuses show
  // up, and an open tab costs the archive one query per LIST_REFRESH, not per snapshot. Without
  // the archive there is no listing (the overview says so): then nothing is asked for.
  const archive = overview?.archive ?? null;
  const list = useLoad<TaskList | null>(
    () =>
      archive === null
        ? Promise.resolve(null)
        : archive
          ? get<TaskList>(
              `tasks${query({ ...filters, status: filters.status, cursor, limit: 50 })}`,
            )
          : Promise.reject(new ApiError(501, 'COGMAN_ARCHIVE_NOT_CONFIGURED', 'No archive')),
    `${listKey}:${archive}`,
    archive === null || !overview ? undefined : Math.floor(Date.parse(overview.at) / LIST_REFRESH),
  );
  useEffect(() => setSelected(new Set()), [listKey]);
  useEffect(() => setUpdated(new Map()), [list.data]);

  const set = (changes: Partial<Filters>) => {
    const next = { ...filters, ...changes };
    navigate(href('/tasks', { ...next }));
  };
  const noArchive = list.error instanceof ApiError && list.error.status === 501;
  const items = list.data?.items ?? [];
  const scheduledView = filters.status.length === 1 && filters.status[0] === 'scheduled';
  const title = scheduledView
    ? 'Scheduled tasks'
    : filters.status.length === 1 && filters.status[0] === 'failed'
      ? 'Failed tasks'
      : 'Tasks';

  const run = async (pendingAction: Pending) => {
    const body =
      pendingAction.scope === 'selected'
        ? { action: pendingAction.action, taskIds: pendingAction.ids }
        : {
            action: pendingAction.action,
            filter: {
              status: filters.status.length ? filters.status : undefined,
              name: filters.name,
              priority: filters.priority,
              primaryKey: filters.primaryKey,
              error: filters.error,
              from: filters.from,
              to: filters.to,
            },
            max: 10_000,
          };
    try {
      const result = await post<{
        done: number;
        conflicts: number;
        failed: number;
        matched: number;
      }>('tasks/bulk', body);
      notify(
        `${pendingAction.action === 'retry' ? 'Retried' : 'Cancelled'} ${result.done} of ${result.matched} task(s)` +
          (result.conflicts ? `; ${result.conflicts} not in a state that allows it` : '') +
          (result.failed ? `; ${result.failed} failed` : ''),
      );
      setSelected(new Set());
      list.reload();
    } catch (error) {
      notify(error instanceof Error ? error.message : String(error), 'error');
    }
  };

  return (
    <div class="page">
      <h1>{title}</h1>
      <form
        class="card lookup"
        onSubmit={(e) => {
          e.preventDefault();
          if (lookup.trim()) navigate(href(`/tasks/${encodeURIComponent(lookup.trim())}`));
        }}
      >
        <label>
          Task id{' '}
          <input
            name="taskId"
            value={lookup}
            onInput={(e) => setLookup(e.currentTarget.value)}
            placeholder="Open a task by its id"
          />
        </label>
        <button type="submit">Open</button>
      </form>
      <FilterForm filters={filters} onApply={set} key={listKey} />
      {noArchive ? (
        <p class="card" role="note">
          Listing and searching tasks needs the MongoDB archive (the <code>mongoUri</code> option).
          A task can still be opened by its id above.
        </p>
      ) : (
        <ErrorBox error={list.error} />
      )}
      {list.data && (
        <section class="card" aria-label="Tasks">
          <div class="card-head">
            <p class="total" aria-live="polite">
              <strong>{list.data.total.toLocaleString()}</strong> task attempt(s) match
            </p>
            {!settings.readOnly && (
              <div class="actions">
                <button
                  type="button"
                  disabled={selected.size === 0}
                  onClick={() =>
                    setPending({ action: 'retry', scope: 'selected', ids: [...selected] })
                  }
                >
                  Retry selected ({selected.size})
                </button>
                <button
                  type="button"
                  disabled={selected.size === 0}
                  onClick={() =>
                    setPending({ action: 'cancel', scope: 'selected', ids: [...selected] })
                  }
                >
                  Cancel selected ({selected.size})
                </button>
                <button
                  type="button"
                  disabled={list.data.total === 0}
                  onClick={() =>
                    setPending({ action: 'retry', scope: 'filter', total: list.data!.total })
                  }
                >
                  Retry all matching
                </button>
                <button
                  type="button"
                  disabled={list.data.total === 0}
                  onClick={() =>
                    setPending({ action: 'cancel', scope: 'filter', total: list.data!.total })
                  }
                >
                  Cancel all matching
                </button>
              </div>
            )}
          </div>
          <div class="table-wrap">
            <table class="table tasks">
              <thead>
                <tr>
                  {!settings.readOnly && (
                    <th scope="col">
                      <input
                        type="checkbox"
                        aria-label="Select every task of this page"
                        checked={items.length > 0 && items.every((t) => selected.has(t.taskId))}
                        onChange={(e) =>
                          setSelected(
                            e.currentTarget.checked
                              ? new Set(items.map((t) => t.taskId))
                              : new Set(),
                          )
                        }
                      />
                    </th>
                  )}
                  <th scope="col">Status</th>
                  <th scope="col">Name</th>
                  <th scope="col">Task</th>
                  <th scope="col">Priority</th>
                  <th scope="col">Primary key</th>
                  <th scope="col" class="num">
                    Attempt
                  </th>
                  <th scope="col">{scheduledView ? 'Due' : 'Created'}</th>
                  <th scope="col" class="num">
                    Duration
                  </th>
                  <th scope="col">Error</th>
                  {scheduledView && !settings.readOnly && <th scope="col">Actions</th>}
                </tr>
              </thead>
              <tbody>
                {items.map((task) => (
                  <Row
                    key={task.taskId}
                    task={updated.get(task.taskId) ?? task}
                    scheduled={scheduledView}
                    selected={selected.has(task.taskId)}
                    onSelect={(on) => {
                      const next = new Set(selected);
                      if (on) next.add(task.taskId);
                      else next.delete(task.taskId);
                      setSelected(next);
                    }}
                    onChanged={(record) => setUpdated(new Map(updated).set(task.taskId, record))}
                  />
                ))}
              </tbody>
            </table>
          </div>
          {items.length === 0 && <p class="muted">No task matches.</p>}
          <nav class="pager" aria-label="Pages of tasks">
            {cursor && <a href={href('/tasks', withoutCursor(params))}>First page</a>}
            {list.data.nextCursor && (
              <a
                href={href('/tasks', {
                  ...Object.fromEntries(params),
                  cursor: list.data.nextCursor,
                })}
                rel="next"
              >
                Next page
              </a>
            )}
          </nav>
        </section>
      )}
      {pending && (
        <Confirm
          title={`${pending.action === 'retry' ? 'Retry' : 'Cancel'} ${pending.scope === 'selected' ? pending.ids.length : pending.total.toLocaleString()} task(s)?`}
          confirmLabel={`${pending.action === 'retry' ? 'Retry' : 'Cancel'} ${pending.scope === 'selected' ? pending.ids.length : pending.total.toLocaleString()} task(s)`}
          danger={pending.action === 'cancel'}
          onConfirm={() => run(pending)}
          onClose={() => setPending(null)}
        >
          {pending.scope === 'selected' ? (
            <p>The selected tasks of this page.</p>
          ) : (
            <p>
              Every task matching the current filter ({describe(filters)}), in batches on the
              server; those whose status does not allow it are skipped.
            </p>
          )}
        </Confirm>
      )}
    </div>
  );
}

function withoutCursor(params: URLSearchParams): Record<string, string> {
  const copy = Object.fromEntries(params);
  delete copy.cursor;
  return copy;
}

function describe(filters: Filters): string {
  const parts: string[] = [];
  if (filters.status.length) parts.push(`status ${filters.status.map(statusLabel).join(' or ')}`);
  if (filters.name) parts.push(`name ${filters.name}`);
  if (filters.priority) parts.push(`${filters.priority} priority`);
  if (filters.primaryKey) parts.push(`primary key ${filters.primaryKey}`);
  if (filters.error) parts.push(`error containing “${filters.error}”`);
  if (filters.from) parts.push(`from ${dateTime(filters.from)}`);
  if (filters.to) parts.push(`to ${dateTime(filters.to)}`);
  return parts.join(', ') || 'no filter: every task';
}

function Row(props: {
  task: TaskRecord;
  scheduled: boolean;
  selected: boolean;
  onSelect: (on: boolean) => void;
  onChanged: (record: TaskRecord) => void;
}) {
  const { task } = props;
  const act = async (action: 'run-now' | 'cancel') => {
    try {
      const record = await post<TaskRecord>(`${taskPath(task.taskId)}/${action}`);
      notify(action === 'cancel' ? 'Cancelled' : 'Sent to its queue now');
      props.onChanged(record);
    } catch (error) {
      notify(error instanceof Error ? error.message : String(error), 'error');
    }
  };
  return (
    <tr data-task-id={task.taskId}>
      {!settings.readOnly && (
        <td>
          <input
            type="checkbox"
            aria-label={`Select task ${task.taskId}`}
            checked={props.selected}
            onChange={(e) => props.onSelect(e.currentTarget.checked)}
          />
        </td>
      )}
      <td>
        <Status status={task.status} />
      </td>
      <td>{task.name}</td>
      <td>
        <a href={href(`/tasks/${encodeURIComponent(task.taskId)}`)} class="mono">
          {task.taskId.slice(0, 8)}…
        </a>
      </td>
      <td>{task.priority}</td>
      <td class="mono">{task.primaryKey ?? '—'}</td>
      <td class="num">{task.attempt}</td>
      <td title={props.scheduled ? (task.runAt ?? '') : task.createdAt}>
        {props.scheduled
          ? `${dateTime(task.runAt)} (${ago(task.runAt)})`
          : dateTime(task.createdAt)}
      </td>
      <td class="num">{duration(task.duration)}</td>
      <td class="error-cell" title={task.failError ?? ''}>
        {task.failError ?? ''}
      </td>
      {props.scheduled && !settings.readOnly && (
        <td class="row-actions">
          <button type="button" onClick={() => void act('run-now')}>
            Run now
          </button>
          <button type="button" onClick={() => void act('cancel')}>
            Cancel
          </button>
        </td>
      )}
    </tr>
  );
}

function FilterForm({
  filters,
  onApply,
}: {
  filters: Filters;
  onApply: (f: Partial<Filters>) => void;
}) {
  const [draft, setDraft] = useState<Filters>(filters);
  const text = (name: keyof Filters, label: string, placeholder = '') => (
    <label>
      {label}
      <input
        name={name}
        value={(draft[name] as string | undefined) ?? ''}
        placeholder={placeholder}
        onInput={(e) => setDraft({ ...draft, [name]: e.currentTarget.value || undefined })}
      />
    </label>
  );
  return (
    <form
      class="card filters"
      aria-label="Filters"
      onSubmit={(e) => {
        e.preventDefault();
        onApply({ ...draft });
      }}
    >
      <fieldset class="statuses">
        <legend>Status</legend>
        {STATUSES.map((status) => (
          <label key={status} class="check">
            <input
              type="checkbox"
              name="status"
              value={status}
              checked={draft.status.includes(status)}
              onChange={(e) =>
                setDraft({
                  ...draft,
                  status: e.currentTarget.checked
                    ? [...draft.status, status]
                    : draft.status.filter((s) => s !== status),
                })
              }
            />
            <Status status={status} />
          </label>
        ))}
      </fieldset>
      <div class="fields">
        {text('name', 'Name')}
        <label>
          Priority
          <select
            name="priority"
            value={draft.priority ?? ''}
            onChange={(e) => setDraft({ ...draft, priority: e.currentTarget.value || undefined })}
          >
            <option value="">any</option>
            <option value="high">high</option>
            <option value="low">low</option>
          </select>
        </label>
        {text('primaryKey', 'Primary key')}
        {text('error', 'Error contains')}
        <label>
          Created from
          <input
            type="datetime-local"
            name="from"
            value={toLocalInput(draft.from)}
            onInput={(e) => setDraft({ ...draft, from: fromLocalInput(e.currentTarget.value) })}
          />
        </label>
        <label>
          to
          <input
            type="datetime-local"
            name="to"
            value={toLocalInput(draft.to)}
            onInput={(e) => setDraft({ ...draft, to: fromLocalInput(e.currentTarget.value) })}
          />
        </label>
        <label>
          Order
          <select
            name="order"
            value={draft.order ?? 'desc'}
            onChange={(e) =>
              setDraft({ ...draft, order: e.currentTarget.value === 'asc' ? 'asc' : undefined })
            }
          >
            <option value="desc">newest first</option>
            <option value="asc">oldest first</option>
          </select>
        </label>
      </div>
      <div class="form-actions">
        <button class="primary" type="submit">
          Apply filters
        </button>
        <a href={href('/tasks')}>Clear</a>
      </div>
    </form>
  );
}
