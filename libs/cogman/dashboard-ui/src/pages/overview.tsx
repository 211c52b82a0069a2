import { lazy, Suspense } from 'preact/compat';
import { useEffect, useState } from 'preact/hooks';
import {
  ApiError,
  get,
  post,
  query,
  settings,
  type CountBucket,
  type Pauses,
  type Priority,
  type QueueState,
} from '../api';
import { Confirm, ErrorBox, Level, notify, RunState } from '../components';
import { count, dateTime } from '../format';
import { useLive, useLoad } from '../hooks';
import { href } from '../router';

// uPlot loads only with the chart (not in the initial JavaScript).
const Chart = lazy(() => import('../chart'));

const RANGES = [
  { label: '1 hour', ms: 3_600_000 },
  { label: '6 hours', ms: 6 * 3_600_000 },
  { label: '24 hours', ms: 24 * 3_600_000 },
  { label: '7 days', ms: 7 * 24 * 3_600_000 },
];

export function OverviewPage() {
  const { overview } = useLive();
  if (!overview) return <p class="muted">Loading the overview…</p>;
  const queues = overview.queues ?? [];
  const high = queues.filter((q) => q.kind === 'high');
  const low = queues.filter((q) => q.kind === 'low');
  const workers = overview.workers ?? [];
  return (
    <div class="page">
      <h1>Overview</h1>
      <section aria-labelledby="warnings-title">
        <h2 id="warnings-title" class="visually-hidden">
          Warnings
        </h2>
        {overview.warnings.length === 0 ? (
          <p class="ok-line">
            <span aria-hidden="true">✓</span> Everything looks fine.
          </p>
        ) : (
          <ul class="warnings">
            {overview.warnings.map((warning) => (
              <li
                key={warning.code}
                class={`warning warning-${warning.level}`}
                data-code={warning.code}
              >
                <Level level={warning.level} />
                {warning.message}
              </li>
            ))}
          </ul>
        )}
      </section>
      <div class="tiles">
        <Tile label="Ready, high priority" value={sum(high, 'ready')} />
        <Tile label="Ready, low priority" value={sum(low, 'ready')} />
        <Tile label="Unacknowledged" value={sum([...high, ...low], 'unacked')} />
        <Tile label="Workers" value={workers.length} link={href('/workers')} />
        <Tile label="Dead letters" value={overview.deadLetters} link={href('/dead-letters')} />
        <Tile label="Offline buffer (this process)" value={overview.offlineTasks} />
      </div>
      <Processing pauses={overview.pauses ?? null} at={overview.at} />
      <section aria-labelledby="queues-title" class="card">
        <h2 id="queues-title">Queues</h2>
        <table class="table">
          <thead>
            <tr>
              <th scope="col">Queue</th>
              <th scope="col">Priority</th>
              <th scope="col" class="num">
                Ready
              </th>
              <th scope="col" class="num">
                Unacknowledged
              </th>
              <th scope="col" class="num">
                Consumers
              </th>
            </tr>
          </thead>
          <tbody>
            {queues.map((queue) => (
              <tr key={queue.name}>
                <td>
                  <code>{queue.name}</code>
                  {queue.error && <div class="error-text">{queue.error}</div>}
                </td>
                <td>{queue.kind === 'dead-letter' ? 'dead letters' : queue.kind}</td>
                <td class="num">{count(queue.ready)}</td>
                <td class="num">{queue.kind === 'dead-letter' ? '—' : count(queue.unacked)}</td>
                <td class="num">
                  {queue.consumers === 0 &&
                  queue.kind !== 'dead-letter' &&
                  overview.pauses?.[queue.kind].paused ? (
                    <span class="muted">0 (paused)</span>
                  ) : queue.consumers === 0 && queue.kind !== 'dead-letter' ? (
                    <span class="bad">
                      <span aria-hidden="true">! </span>0
                    </span>
                  ) : (
                    count(queue.consumers)
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {overview.queuesError && <ErrorBox error={overview.queuesError} />}
        <p class="muted small">
          RabbitMQ {overview.services.broker ? 'connected' : 'unreachable'} · Redis{' '}
          {overview.services.redis ? 'connected' : 'unreachable'} · MongoDB archive{' '}
          {overview.services.mongo === null
            ? 'not configured'
            : overview.services.mongo
              ? 'connected'
              : 'unreachable'}{' '}
          · as of {dateTime(overview.at)}
        </p>
      </section>
      {overview.archive ? (
        <Throughput />
      ) : (
        <p class="card muted">Throughput over time needs the MongoDB archive (mongoUri).</p>
      )}
    </div>
  );
}

type Target = Priority | 'all';

const TARGET_LABELS: Record<Target, string> = {
  all: 'Both (the namespace)',
  high: 'High priority',
  low: 'Low priority',
};

/**
 * Whether each priority is processed or paused, with Pause (confirmed) and Resume for each and
 * for the whole namespace. The answer of an action is shown until a later snapshot arrives.
 */
function Processing({ pauses: live, at }: { pauses: Pauses | null; at: string }) {
  const [answered, setAnswered] = useState<{ pauses: Pauses; at: number } | null>(null);
  const [confirming, setConfirming] = useState<Target | null>(null);
  const pauses = answered && answered.at > Date.parse(at) ? answered.pauses : live;
  const act = async (action: 'pause' | 'resume', target: Target) => {
    try {
      const path = target === 'all' ? `queues/${action}` : `queues/${target}/${action}`;
      setAnswered({ pauses: await post<Pauses>(path), at: Date.now() });
      const what = target === 'all' ? 'Both priorities' : `The ${target} priority`;
      notify(action === 'pause' ? `${what} paused` : `${what} resumed`);
    } catch (error) {
      notify(error instanceof Error ? error.message : String(error), 'error');
    }
  };
  const state = (target: Target) => {
    if (!pauses) return null;
    if (target !== 'all') return pauses[target];
    const paused = pauses.high.paused && pauses.low.paused;
    const since = [pauses.high.since, pauses.low.since].filter((s): s is string => s !== null);
    return { paused, partly: !paused && since.length > 0, since: since.sort()[0] ?? null };
  };
  return (
    <section aria-labelledby="processing-title" class="card">
      <div class="card-head">
        <h2 id="processing-title">Processing</h2>
        {!pauses ? (
          <p class="muted">Whether a priority is paused is unknown (Redis could not be read).</p>
        ) : (
          <ul class="pause-list">
            {(['high', 'low', 'all'] as const).map((target) => {
              const one = state(target)!;
              const partly = 'partly' in one && one.partly;
              return (
                <li key={target} data-priority={target}>
                  <strong>{TARGET_LABELS[target]}</strong>{' '}
                  <RunState
                    paused={one.paused || partly}
                    label={partly ? 'Partly paused' : undefined}
                  />
                  {one.since && <span class="muted small"> since {dateTime(one.since)}</span>}
                  {!settings.readOnly && !one.paused && (
                    <button
                      type="button"
                      aria-label={`Pause: ${TARGET_LABELS[target].toLowerCase()}`}
                      onClick={() => setConfirming(target)}
                    >
                      Pause
                    </button>
                  )}
                  {!settings.readOnly && (one.paused || partly) && (
                    <button
                      type="button"
                      class="primary"
                      aria-label={`Resume: ${TARGET_LABELS[target].toLowerCase()}`}
                      onClick={() => void act('resume', target)}
                    >
                      Resume
                    </button>
                  )}
                </li>
              );
            })}
          </ul>
        )}
      </div>
      {confirming && (
        <Confirm
          title={
            confirming === 'all'
              ? 'Pause both priorities (the whole namespace)?'
              : `Pause the ${confirming} priority?`
          }
          confirmLabel="Pause"
          danger
          onConfirm={() => act('pause', confirming)}
          onClose={() => setConfirming(null)}
        >
          <p>
            Within about a second no worker process starts a new task of it; running tasks finish.
            New tasks are still accepted and wait in their queue until it is resumed.
          </p>
        </Confirm>
      )}
    </section>
  );
}

function Tile({ label, value, link }: { label: string; value: number | null; link?: string }) {
  const body = (
    <>
      <span class="tile-value">{count(value)}</span>
      <span class="tile-label">{label}</span>
    </>
  );
  return link ? (
    <a class="tile" href={link}>
      {body}
    </a>
  ) : (
    <div class="tile">{body}</div>
  );
}

function sum(queues: QueueState[], field: 'ready' | 'unacked'): number | null {
  if (queues.some((q) => q[field] === null)) return null;
  return queues.reduce((total, q) => total + (q[field] ?? 0), 0);
}

function Throughput() {
  const [range, setRange] = useState(RANGES[0].ms);
  const [minute, setMinute] = useState(() => Math.floor(Date.now() / 60_000));
  // The chart moves on each minute while the tab is shown (one count query a minute).
  useEffect(() => {
    const timer = window.setInterval(() => {
      if (document.visibilityState === 'visible') setMinute(Math.floor(Date.now() / 60_000));
    }, 60_000);
    return () => window.clearInterval(timer);
  }, []);
  const counts = useLoad(() => {
    const to = new Date((minute + 1) * 60_000);
    const from = new Date(to.getTime() - range);
    return get<{ buckets: CountBucket[] }>(
      `counts${query({ from: from.toISOString(), to: to.toISOString(), buckets: 60 })}`,
    );
  }, `${range}:${minute}`);
  return (
    <section class="card" aria-labelledby="throughput-title">
      <div class="card-head">
        <h2 id="throughput-title">Tasks created, and failures</h2>
        <label>
          Range{' '}
          <select value={range} onChange={(e) => setRange(Number(e.currentTarget.value))}>
            {RANGES.map((r) => (
              <option key={r.ms} value={r.ms}>
                last {r.label}
              </option>
            ))}
          </select>
        </label>
        <button type="button" onClick={() => setMinute(Math.floor(Date.now() / 60_000))}>
          Refresh
        </button>
      </div>
      {counts.error instanceof ApiError && counts.error.status === 501 ? (
        <p class="muted">Needs the MongoDB archive.</p>
      ) : (
        <ErrorBox error={counts.error} />
      )}
      {counts.data && (
        <Suspense fallback={<p class="muted">Loading the chart…</p>}>
          <Chart buckets={counts.data.buckets} />
        </Suspense>
      )}
      {counts.data && (
        <p class="muted small">
          {count(counts.data.buckets.reduce((n, b) => n + b.total, 0))} created,{' '}
          {count(counts.data.buckets.reduce((n, b) => n + (b.counts.failed ?? 0), 0))} failed in the
          range.
        </p>
      )}
    </section>
  );
}
