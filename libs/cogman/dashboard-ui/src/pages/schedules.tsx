import { useState } from 'preact/hooks';
import { get, post, remove, schedulePath, settings, type Schedule, type TaskRecord } from '../api';
import { Confirm, ErrorBox, notify, RunState, Status } from '../components';
import { ago, dateTime } from '../format';
import { useLive, useLoad } from '../hooks';
import { href } from '../router';

/** A fixed interval in the largest unit that divides it (`every 5 min`). */
function interval(ms: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['min', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms % size === 0) return `every ${ms / size} ${unit}`;
  }
  return `every ${ms} ms`;
}

const taskLink = (taskId: string) => href(`/tasks/${encodeURIComponent(taskId)}`);

export function SchedulesPage() {
  const { overview } = useLive();
  // Read again with each live snapshot: next runs, last runs and states stay current.
  const schedules = useLoad(
    () => get<{ schedules: Schedule[] }>('schedules'),
    'schedules',
    overview?.at,
  );
  // The task each "Trigger now" sent, by schedule (a trigger is not one of its ticks).
  const [triggered, setTriggered] = useState<Record<string, string>>({});
  const [deleting, setDeleting] = useState<Schedule | null>(null);
  const items = schedules.data?.schedules ?? [];
  const now = overview ? new Date(overview.at).getTime() : Date.now();

  const act = async (schedule: Schedule, action: 'trigger' | 'pause' | 'resume' | 'delete') => {
    try {
      if (action === 'trigger') {
        const task = await post<TaskRecord>(`${schedulePath(schedule.id)}/trigger`);
        setTriggered((map) => ({ ...map, [schedule.id]: task.taskId }));
        notify(`Sent ${task.name} now (task ${task.taskId})`);
      } else if (action === 'delete') {
        await remove(schedulePath(schedule.id));
        notify(`Removed the schedule ${schedule.id}`);
      } else {
        await post<Schedule>(`${schedulePath(schedule.id)}/${action}`);
        notify(`Schedule ${schedule.id} ${action === 'pause' ? 'paused' : 'resumed'}`);
      }
      schedules.reload();
    } catch (error) {
      notify(error instanceof Error ? error.message : String(error), 'error');
    }
  };

  return (
    <div class="page">
      <h1>Schedules</h1>
      <p class="muted">
        Recurring tasks: each tick of a cron expression or an interval sends one task, whichever
        process runs the scheduler. Schedules declared in code come back at the next boot if removed
        here.
      </p>
      <ErrorBox error={schedules.error} />
      {schedules.data && (
        <section class="card" aria-label="Schedules">
          <p class="total">
            <strong>{items.length}</strong> schedule(s)
          </p>
          <div class="table-wrap">
            <table class="table">
              <thead>
                <tr>
                  <th scope="col">Schedule</th>
                  <th scope="col">Task</th>
                  <th scope="col">When</th>
                  <th scope="col">Next run</th>
                  <th scope="col">Last run</th>
                  <th scope="col">State</th>
                  {!settings.readOnly && <th scope="col">Actions</th>}
                </tr>
              </thead>
              <tbody>
                {items.map((schedule) => (
                  <tr key={schedule.id} data-schedule={schedule.id}>
                    <td class="mono">
                      {schedule.id}{' '}
                      <span
                        class="tag"
                        title={
                          schedule.source === 'code'
                            ? 'Declared in code (reconciled at boot)'
                            : 'Created at run time'
                        }
                      >
                        {schedule.source}
                      </span>
                    </td>
                    <td>
                      {schedule.name}
                      {schedule.priority && <span class="muted"> ({schedule.priority})</span>}
                    </td>
                    <td>
                      {schedule.cron !== undefined ? (
                        <>
                          <code>{schedule.cron}</code>
                          <div class="muted small">{schedule.timezone ?? 'UTC'}</div>
                        </>
                      ) : (
                        interval(schedule.every ?? 0)
                      )}
                    </td>
                    <td>
                      {schedule.nextRunAt ? (
                        <>
                          {dateTime(schedule.nextRunAt)}
                          <div class="muted small">{ago(schedule.nextRunAt, now)}</div>
                        </>
                      ) : (
                        '—'
                      )}
                    </td>
                    <td>
                      {schedule.lastTask ? (
                        <>
                          <a class="mono" href={taskLink(schedule.lastTask.taskId)}>
                            {schedule.lastRunAt ? dateTime(schedule.lastRunAt) : 'its task'}
                          </a>{' '}
                          {schedule.lastTask.status && <Status status={schedule.lastTask.status} />}
                        </>
                      ) : (
                        <span class="muted">not yet</span>
                      )}
                      {triggered[schedule.id] && (
                        <div class="small">
                          Triggered:{' '}
                          <a class="mono" href={taskLink(triggered[schedule.id])}>
                            {triggered[schedule.id]}
                          </a>
                        </div>
                      )}
                    </td>
                    <td>
                      <RunState paused={schedule.paused} />
                    </td>
                    {!settings.readOnly && (
                      <td class="actions-cell">
                        <button type="button" onClick={() => void act(schedule, 'trigger')}>
                          Trigger now
                        </button>
                        {schedule.paused ? (
                          <button
                            type="button"
                            class="primary"
                            onClick={() => void act(schedule, 'resume')}
                          >
                            Resume
                          </button>
                        ) : (
                          <button type="button" onClick={() => void act(schedule, 'pause')}>
                            Pause
                          </button>
                        )}
                        <button type="button" class="danger" onClick={() => setDeleting(schedule)}>
                          Delete
                        </button>
                      </td>
                    )}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {items.length === 0 && (
            <p class="muted">
              No schedule. Declare one in code or create one with{' '}
              <code>CogmanClient.upsertSchedule</code> or <code>PUT /schedules/:id</code>.
            </p>
          )}
        </section>
      )}
      {deleting && (
        <Confirm
          title={`Delete the schedule ${deleting.id}?`}
          confirmLabel="Delete"
          danger
          onConfirm={() => act(deleting, 'delete')}
          onClose={() => setDeleting(null)}
        >
          <p>
            No more tasks are sent for it; the tasks it sent stay.
            {deleting.source === 'code' &&
              ' It is declared in code: the next boot of a worker creates it again.'}
          </p>
        </Confirm>
      )}
    </div>
  );
}
