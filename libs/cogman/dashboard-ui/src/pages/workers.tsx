import { get, type Worker } from '../api';
import { ErrorBox } from '../components';
import { ago, dateTime } from '../format';
import { useLive, useLoad } from '../hooks';

export function WorkersPage() {
  const { overview } = useLive();
  // The live snapshot carries the workers; read them directly until it arrives.
  const direct = useLoad(() => get<{ workers: Worker[] }>('workers'), 'workers');
  const workers = overview?.workers ?? direct.data?.workers ?? null;
  const now = overview ? new Date(overview.at).getTime() : Date.now();
  return (
    <div class="page">
      <h1>Workers</h1>
      <p class="muted">Worker processes, as each last reported itself (every 2 seconds).</p>
      {!workers && <ErrorBox error={direct.error} />}
      {workers && (
        <section class="card" aria-label="Workers">
          <p class="total">
            <strong>{workers.length}</strong> worker process(es)
          </p>
          <div class="table-wrap">
            <table class="table">
              <thead>
                <tr>
                  <th scope="col">Host</th>
                  <th scope="col" class="num">
                    PID
                  </th>
                  <th scope="col" class="num">
                    Concurrency (high / low)
                  </th>
                  <th scope="col" class="num">
                    Running tasks
                  </th>
                  <th scope="col" class="num">
                    Deliveries held
                  </th>
                  <th scope="col">Last report</th>
                  <th scope="col">Started</th>
                </tr>
              </thead>
              <tbody>
                {workers.map((worker) => (
                  <tr key={worker.id} data-worker={worker.id}>
                    <td>{worker.host}</td>
                    <td class="num">{worker.pid}</td>
                    <td class="num">
                      {worker.highPriorityConcurrency ?? '—'} /{' '}
                      {worker.lowPriorityConcurrency ?? '—'}
                    </td>
                    <td class="num">{worker.activeTasks ?? '—'}</td>
                    <td
                      class="num"
                      title={Object.entries(worker.held)
                        .map(([q, n]) => `${q}: ${n}`)
                        .join('\n')}
                    >
                      {Object.values(worker.held).reduce((a, b) => a + b, 0)}
                    </td>
                    <td>{ago(worker.reportedAt, now)}</td>
                    <td>{dateTime(worker.startedAt)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {workers.length === 0 && <p class="muted">No worker reports itself.</p>}
        </section>
      )}
    </div>
  );
}
