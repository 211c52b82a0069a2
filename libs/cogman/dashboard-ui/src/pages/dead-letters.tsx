import { Fragment } from 'preact';
import { useState } from 'preact/hooks';
import { get, post, query, settings, type DeadLetter } from '../api';
import { Confirm, ErrorBox, notify, Payload } from '../components';
import { count, dateTime } from '../format';
import { useLive, useLoad } from '../hooks';
import { href } from '../router';

interface DeadLetters {
  total: number | null;
  items: DeadLetter[];
  limit: number;
}

interface ActionResult {
  handled: number;
  retried: number;
  requeued: number;
  kept: number;
  remaining: number | null;
}

type Pending = { action: 'redrive' | 'discard'; keys: string[] | 'all'; count: number };

export function DeadLettersPage() {
  const { overview } = useLive();
  const [limit, setLimit] = useState(50);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [pending, setPending] = useState<Pending | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  // Read again when the live count changes.
  const letters = useLoad(
    () => get<DeadLetters>(`dead-letters${query({ limit })}`),
    String(limit),
    overview?.deadLetters,
  );
  const items = letters.data?.items ?? [];
  const total = letters.data?.total ?? overview?.deadLetters ?? null;

  const run = async ({ action, keys }: Pending) => {
    try {
      // The server goes through a bounded batch per call; "all" calls until the queue is done.
      let handled = 0;
      let retried = 0;
      let requeued = 0;
      for (let round = 0; round < 100; round++) {
        const result = await post<ActionResult>(
          `dead-letters/${action}`,
          keys === 'all' ? { all: true } : { keys },
        );
        handled += result.handled;
        retried += result.retried;
        requeued += result.requeued;
        if (keys !== 'all' || result.handled === 0 || !result.remaining) break;
      }
      notify(
        action === 'redrive'
          ? `Redrove ${handled} message(s): ${retried} retried as a new attempt, ${requeued} back in their queue`
          : `Discarded ${handled} message(s)`,
      );
      setSelected(new Set());
      letters.reload();
    } catch (error) {
      notify(error instanceof Error ? error.message : String(error), 'error');
    }
  };

  return (
    <div class="page">
      <h1>Dead letters</h1>
      <p class="muted">
        Messages no worker could run (the reason says why). Redrive sends a message back: a task
        whose attempt failed is retried as a new attempt; any other message returns to its queue.
      </p>
      <ErrorBox error={letters.error} />
      <section class="card" aria-label="Dead letters">
        <div class="card-head">
          <p class="total">
            <strong>{count(total)}</strong> message(s) in the dead-letter queue
            {total !== null && total > items.length && ` (the first ${items.length} shown)`}
          </p>
          <label>
            Show{' '}
            <select value={limit} onChange={(e) => setLimit(Number(e.currentTarget.value))}>
              {[50, 200, 500].map((n) => (
                <option key={n} value={n}>
                  {n}
                </option>
              ))}
            </select>
          </label>
          {!settings.readOnly && (
            <div class="actions">
              <button
                type="button"
                disabled={selected.size === 0}
                onClick={() =>
                  setPending({ action: 'redrive', keys: [...selected], count: selected.size })
                }
              >
                Redrive selected ({selected.size})
              </button>
              <button
                type="button"
                disabled={selected.size === 0}
                onClick={() =>
                  setPending({ action: 'discard', keys: [...selected], count: selected.size })
                }
              >
                Discard selected ({selected.size})
              </button>
              <button
                type="button"
                disabled={!total}
                onClick={() => setPending({ action: 'redrive', keys: 'all', count: total ?? 0 })}
              >
                Redrive all
              </button>
              <button
                type="button"
                class="danger"
                disabled={!total}
                onClick={() => setPending({ action: 'discard', keys: 'all', count: total ?? 0 })}
              >
                Discard all
              </button>
            </div>
          )}
        </div>
        <div class="table-wrap">
          <table class="table">
            <thead>
              <tr>
                {!settings.readOnly && (
                  <th scope="col">
                    <input
                      type="checkbox"
                      aria-label="Select every message shown"
                      checked={items.length > 0 && items.every((m) => selected.has(m.key))}
                      onChange={(e) =>
                        setSelected(
                          e.currentTarget.checked ? new Set(items.map((m) => m.key)) : new Set(),
                        )
                      }
                    />
                  </th>
                )}
                <th scope="col">Reason</th>
                <th scope="col">Task</th>
                <th scope="col">Task id</th>
                <th scope="col">From queue</th>
                <th scope="col">Dead-lettered</th>
                <th scope="col">Detail</th>
                <th scope="col">Body</th>
              </tr>
            </thead>
            <tbody>
              {items.map((letter) => (
                <Fragment key={letter.key}>
                  <tr data-key={letter.key} data-task-id={letter.taskId ?? ''}>
                    {!settings.readOnly && (
                      <td>
                        <input
                          type="checkbox"
                          aria-label={`Select the message of task ${letter.taskId ?? letter.key}`}
                          checked={selected.has(letter.key)}
                          onChange={(e) => {
                            const next = new Set(selected);
                            if (e.currentTarget.checked) next.add(letter.key);
                            else next.delete(letter.key);
                            setSelected(next);
                          }}
                        />
                      </td>
                    )}
                    <td>
                      <span class="reason">{letter.reason ?? 'unknown'}</span>
                    </td>
                    <td>{letter.taskName ?? '—'}</td>
                    <td class="mono">
                      {letter.taskId ? (
                        <a href={href(`/tasks/${encodeURIComponent(letter.taskId)}`)}>
                          {letter.taskId}
                        </a>
                      ) : (
                        '—'
                      )}
                    </td>
                    <td class="mono">{letter.queue ?? '—'}</td>
                    <td>{dateTime(letter.deadLetteredAt)}</td>
                    <td class="error-cell">{letter.detail ?? ''}</td>
                    <td>
                      <button
                        type="button"
                        class="nowrap"
                        aria-expanded={open === letter.key}
                        onClick={() => setOpen(open === letter.key ? null : letter.key)}
                      >
                        {open === letter.key ? 'Hide' : 'Show'} ({letter.size} B)
                      </button>
                    </td>
                  </tr>
                  {open === letter.key && (
                    <tr class="expanded">
                      <td colSpan={8}>
                        <Payload encoding={letter.payloadEncoding} payload={letter.payload} />
                      </td>
                    </tr>
                  )}
                </Fragment>
              ))}
            </tbody>
          </table>
        </div>
        {items.length === 0 && letters.data && <p class="muted">The dead-letter queue is empty.</p>}
      </section>
      {pending && (
        <Confirm
          title={`${pending.action === 'redrive' ? 'Redrive' : 'Discard'} ${pending.count.toLocaleString()} message(s)?`}
          confirmLabel={`${pending.action === 'redrive' ? 'Redrive' : 'Discard'} ${pending.count.toLocaleString()}`}
          danger={pending.action === 'discard'}
          onConfirm={() => run(pending)}
          onClose={() => setPending(null)}
        >
          <p>
            {pending.action === 'discard'
              ? 'They are deleted from the dead-letter queue for good.'
              : 'Each goes back to run again.'}{' '}
            Done on the server in batches of at most 500.
          </p>
        </Confirm>
      )}
    </div>
  );
}
