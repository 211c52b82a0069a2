import { useEffect, useState } from 'preact/hooks';
import { isKeyNeeded, login, onKeyChange, settings } from './api';
import { Notices } from './components';
import { useLive } from './hooks';
import { live } from './live';
import { DeadLettersPage } from './pages/dead-letters';
import { OverviewPage } from './pages/overview';
import { SchedulesPage } from './pages/schedules';
import { TaskPage } from './pages/task';
import { TasksPage } from './pages/tasks';
import { WorkersPage } from './pages/workers';
import { href, useRoute } from './router';

type Theme = 'system' | 'light' | 'dark';

function useTheme(): [Theme, (theme: Theme) => void] {
  const [theme, setTheme] = useState<Theme>(
    () => (localStorage.getItem('cogman-dashboard-theme') as Theme | null) ?? 'system',
  );
  useEffect(() => {
    if (theme === 'system') delete document.documentElement.dataset.theme;
    else document.documentElement.dataset.theme = theme;
    localStorage.setItem('cogman-dashboard-theme', theme);
  }, [theme]);
  return [theme, setTheme];
}

const NAV = [
  { label: 'Overview', path: '/', params: undefined },
  { label: 'Tasks', path: '/tasks', params: undefined },
  {
    label: 'Scheduled',
    path: '/tasks',
    params: { status: 'scheduled', order: 'asc' },
    view: 'scheduled',
  },
  { label: 'Failed', path: '/tasks', params: { status: 'failed' }, view: 'failed' },
  { label: 'Schedules', path: '/schedules', params: undefined },
  { label: 'Dead letters', path: '/dead-letters', params: undefined },
  { label: 'Workers', path: '/workers', params: undefined },
];

export function App() {
  const route = useRoute();
  const [theme, setTheme] = useTheme();
  const [keyNeeded, setKeyNeeded] = useState(isKeyNeeded());
  const { overview, mode } = useLive();
  useEffect(() => onKeyChange(() => setKeyNeeded(isKeyNeeded())), []);

  const status = route.params.get('status') ?? '';
  const view =
    route.path === '/tasks' && status === 'scheduled'
      ? 'scheduled'
      : route.path === '/tasks' && status === 'failed'
        ? 'failed'
        : route.path.startsWith('/tasks/')
          ? '/tasks'
          : route.path;

  let page;
  if (route.path === '/') page = <OverviewPage />;
  else if (route.path === '/tasks') page = <TasksPage params={route.params} />;
  else if (route.path.startsWith('/tasks/'))
    page = <TaskPage id={decodeURIComponent(route.path.slice('/tasks/'.length))} />;
  else if (route.path === '/schedules') page = <SchedulesPage />;
  else if (route.path === '/dead-letters') page = <DeadLettersPage />;
  else if (route.path === '/workers') page = <WorkersPage />;
  else
    page = (
      <p>
        No such page. <a href="#/">Overview</a>
      </p>
    );

  const dead = overview?.deadLetters ?? 0;
  return (
    <div class="shell">
      <a
        class="skip"
        href="#main"
        onClick={(e) => {
          e.preventDefault();
          document.getElementById('main')?.focus();
        }}
      >
        Skip to content
      </a>
      <header class="top">
        <div class="brand">
          <svg viewBox="0 0 16 16" width="20" height="20" aria-hidden="true">
            <path
              fill="currentColor"
              d="M8 0l1.4 2.3 2.6-.6.3 2.6 2.5 1-1.2 2.4 1.2 2.4-2.5 1-.3 2.6-2.6-.6L8 16l-1.4-2.3-2.6.6-.3-2.6-2.5-1L2.4 8 1.2 5.6l2.5-1 .3-2.6 2.6.6zm0 5a3 3 0 1 0 0 6 3 3 0 0 0 0-6z"
            />
          </svg>
          <span>Cogman</span>
          {settings.readOnly && (
            <span class="tag" title="dashboard.readOnly">
              read-only
            </span>
          )}
        </div>
        <nav aria-label="Pages">
          <ul>
            {NAV.map((item) => {
              const current = (item.view ?? item.path) === view;
              return (
                <li key={item.label}>
                  <a
                    href={href(item.path, item.params)}
                    aria-current={current ? 'page' : undefined}
                  >
                    {item.label}
                    {item.path === '/dead-letters' && dead > 0 && <span class="pill">{dead}</span>}
                  </a>
                </li>
              );
            })}
          </ul>
        </nav>
        <div class="top-right">
          <span class={`live live-${mode}`} title="How the page gets updates">
            <span aria-hidden="true" class="live-dot" />
            {mode === 'stream'
              ? 'Live'
              : mode === 'polling'
                ? 'Polling'
                : mode === 'paused'
                  ? 'Paused'
                  : 'Offline'}
          </span>
          <label class="theme">
            <span class="visually-hidden">Theme</span>
            <select value={theme} onChange={(e) => setTheme(e.currentTarget.value as Theme)}>
              <option value="system">System theme</option>
              <option value="light">Light</option>
              <option value="dark">Dark</option>
            </select>
          </label>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {keyNeeded ? <KeyPrompt /> : page}
      </main>
      <Notices />
    </div>
  );
}

/** Asks for the API key once; it is kept for this browser session only (sessionStorage). */
function KeyPrompt() {
  const [key, setKey] = useState('');
  const [error, setError] = useState<string | null>(null);
  return (
    <form
      class="card key-prompt"
      onSubmit={(event) => {
        event.preventDefault();
        setError(null);
        login(key.trim()).then(
          () => live.restart(),
          (reason: unknown) => setError(reason instanceof Error ? reason.message : String(reason)),
        );
      }}
    >
      <h1>API key</h1>
      <p>This Cogman API needs its key (restApiKey). It is kept for this browser session only.</p>
      <label>
        Key
        <input
          type="password"
          name="apiKey"
          autoComplete="off"
          value={key}
          autoFocus
          onInput={(e) => setKey(e.currentTarget.value)}
          required
        />
      </label>
      {error && (
        <p class="error-text" role="alert">
          {error}
        </p>
      )}
      <button class="primary" type="submit">
        Open the dashboard
      </button>
    </form>
  );
}
