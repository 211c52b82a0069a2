import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { CogmanClient, CogmanWorker, TaskHandler, type CogmanTaskHandler } from '@cogman/nestjs';
import { openBrowser, screenshotDir, watchPage, type OpenBrowser } from './support/browser';
import { startHttpApp, type HttpApp } from './support/http';
import { dropDatabase, mongoUri } from './support/mongo';
import { cleanUp, uniqueNamespace } from './support/services';
import { waitFor } from './support/wait';

/**
 * The dashboard in a real browser (Debian's Chromium, driven by playwright-core) against a real
 * application with RabbitMQ, Redis and the MongoDB archive (FerretDB).
 */

/** Whether `payment` tasks fail now (the spec turns it off to let retries succeed). */
let paymentsFail = true;

@TaskHandler('payment', { retry: 0 })
class PaymentHandler implements CogmanTaskHandler<{ order: string }> {
  handle(payload: { order: string }) {
    if (paymentsFail) throw new Error(`card declined for ${payload.order}`);
  }
}

@TaskHandler('email')
class EmailHandler implements CogmanTaskHandler {
  handle() {}
}

const shots = screenshotDir();
const shot = (page: Page, name: string) =>
  page.screenshot({ path: join(shots, `${name}.png`), fullPage: false });

describe('Dashboard in a browser', () => {
  const namespace = uniqueNamespace('dash-ui');
  const database = namespace.replace(/[^A-Za-z0-9_]/g, '_');
  let app: HttpApp;
  let client: CogmanClient;
  let browser: OpenBrowser;
  let page: Page;
  let dashboard: string;

  beforeAll(async () => {
    app = await startHttpApp(
      { namespace, mongoUri: mongoUri(database), unknownTaskGracePeriod: 0 },
      { providers: [PaymentHandler, EmailHandler], extras: { startDashboard: true } },
    );
    client = app.app.get(CogmanClient);
    dashboard = `${app.api}/dashboard/`;
    await waitFor('the archive to connect', () => client.services().mongo?.connected);
    browser = await openBrowser();
    page = await browser.context.newPage();
  });

  afterAll(async () => {
    await browser?.close();
    await app?.app.close();
    await cleanUp(namespace);
    await dropDatabase(database);
  });

  async function archived(taskId: string, status: string) {
    await waitFor(`task ${taskId} to be archived ${status}`, async () => {
      const page = await client.listTasks({
        originalTaskId: taskId,
        status: [status as never],
        limit: 5,
      });
      return page.items.some((task) => task.taskId === taskId);
    });
  }

  it('finds a failed task by its primaryKey, retries it from its page, and sees the new attempt live', async () => {
    paymentsFail = true;
    for (let i = 0; i < 5; i++)
      await client.sendTask({ name: 'email', payload: { to: `u${i}@example.com` } });
    const failed = await client.sendTask({
      name: 'payment',
      primaryKey: 'order-1001',
      payload: { order: 'order-1001', amount: 4200 },
      headers: { tenant: 'acme' },
    });
    await archived(failed.taskId, 'failed');

    await page.goto(dashboard);
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    // By keyboard: the Tasks link, then the filter form.
    await page.getByRole('link', { name: 'Tasks', exact: true }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Tasks', exact: true }).waitFor();
    await page.getByLabel('Primary key').fill('order-1001');
    await page.getByLabel('Primary key').press('Enter');
    await waitFor('the filter in the URL', () => page.url().includes('primaryKey=order-1001'));
    // The filtered page (not the unfiltered one it replaces): one match.
    await page.locator('.total', { hasText: /^1 task attempt/ }).waitFor();
    const row = page.locator(`tr[data-task-id="${failed.taskId}"]`);
    await row.waitFor();
    expect(await row.getByText('Failed').count()).toBe(1);
    expect(await page.locator('tbody tr').count()).toBe(1);
    await shot(page, 'tasks');

    await row.getByRole('link').click();
    await page.getByRole('heading', { name: /payment/ }).waitFor();
    await page.locator('tr[data-attempt="1"]').getByText('card declined for order-1001').waitFor();
    expect(await page.getByText('tenant').count()).toBeGreaterThan(0);

    paymentsFail = false;
    await page.getByRole('button', { name: 'Retry' }).click();
    // The second attempt appears, and its success arrives with the live updates.
    await page.locator('tr[data-attempt="2"]').getByText('Succeeded').waitFor();
    await page.locator('h1').getByText('Succeeded').waitFor();
    expect(await page.getByRole('button', { name: 'Retry' }).count()).toBe(0);
    await shot(page, 'task');

    // Send a copy: clone, edit, send.
    await page.getByRole('button', { name: 'Send a copy' }).click();
    const dialog = page.getByRole('dialog');
    const editor = dialog.getByRole('textbox');
    const copy = JSON.parse(await editor.inputValue()) as Record<string, unknown>;
    expect(copy).toMatchObject({
      name: 'payment',
      primaryKey: 'order-1001',
      headers: { tenant: 'acme' },
    });
    await editor.fill(JSON.stringify({ ...copy, primaryKey: 'order-1002' }));
    await dialog.getByRole('button', { name: 'Send' }).click();
    await page.getByText('order-1002').waitFor();
    const copied = await waitFor('the copy to run', async () => {
      const page = await client.listTasks({
        primaryKey: 'order-1002',
        status: ['success'],
        limit: 5,
      });
      return page.items[0];
    });
    expect(copied.payload).toEqual({ order: 'order-1001', amount: 4200 });
    expect(page.url()).toContain(copied.taskId);
  });

  it('cancels a scheduled task from the scheduled view, and runs another now', async () => {
    const later = await client.sendTask({ name: 'email', delay: 3_600_000, payload: { n: 1 } });
    const soon = await client.sendTask({ name: 'email', delay: 3_600_000, payload: { n: 2 } });
    await archived(later.taskId, 'scheduled');
    await archived(soon.taskId, 'scheduled');
    await page.goto(dashboard);
    await page.getByRole('link', { name: 'Scheduled' }).click();
    await page.getByRole('heading', { name: 'Scheduled tasks' }).waitFor();
    const row = page.locator(`tr[data-task-id="${later.taskId}"]`);
    await row.waitFor();
    await row.getByRole('button', { name: 'Cancel' }).click();
    await row.getByText('Cancelled', { exact: true }).waitFor();
    await waitFor(
      'the task to be cancelled',
      async () => (await client.getTask(later.taskId))?.status === 'cancelled',
    );
    // Run now: the other one goes to its queue at once, and runs.
    const other = page.locator(`tr[data-task-id="${soon.taskId}"]`);
    await other.getByRole('button', { name: 'Run now' }).click();
    await waitFor(
      'the task run now to succeed',
      async () => (await client.getTask(soon.taskId))?.status === 'success',
    );
    await row.waitFor({ state: 'detached' });
    await other.waitFor({ state: 'detached' });
  });

  it('redrives a dead letter once a handler for it exists', async () => {
    const invoice = await client.sendTask({ name: 'invoice', payload: { number: 'INV-7' } });
    await page.goto(`${dashboard}#/dead-letters`);
    const row = page.locator(`tr[data-task-id="${invoice.taskId}"]`);
    await row.waitFor();
    expect(await row.getByText('unknown_task').count()).toBe(1);
    await shot(page, 'dead-letters');

    let ran = 0;
    app.app.get(CogmanWorker).register('invoice', () => void ran++);
    await row.getByRole('checkbox').check();
    await page.getByRole('button', { name: 'Redrive selected (1)' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByText('Redrive 1 message(s)?').waitFor();
    await dialog.getByRole('button', { name: 'Redrive 1' }).click();
    await page.getByText(/Redrove 1 message\(s\): 1 retried/).waitFor();
    await row.waitFor({ state: 'detached' });
    await waitFor('the redriven task to run', async () => {
      const attempts = await client.getAttempts(invoice.taskId);
      return attempts.length === 2 && attempts[1].status === 'success';
    });
    expect(ran).toBe(1);
  });

  it('retries every task matching a filter in the URL, after showing the count', async () => {
    paymentsFail = true;
    const batch = [];
    for (let i = 0; i < 3; i++) {
      batch.push(
        await client.sendTask({
          name: 'payment',
          primaryKey: `batch-${i}`,
          payload: { order: `batch-${i}` },
        }),
      );
    }
    for (const task of batch) await archived(task.taskId, 'failed');
    await page.goto(`${dashboard}#/tasks?status=failed&name=payment&error=batch`);
    await page.getByRole('heading', { name: 'Failed tasks' }).waitFor();
    await page.locator('.total').getByText('3').waitFor();
    expect(await page.getByLabel('Error contains').inputValue()).toBe('batch');

    paymentsFail = false;
    await page.getByRole('button', { name: 'Retry all matching' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByText('Retry 3 task(s)?').waitFor();
    await dialog.getByRole('button', { name: 'Retry 3 task(s)' }).click();
    await page.getByText('Retried 3 of 3 task(s)').waitFor();
    for (const task of batch) {
      await waitFor(`${task.taskId} to succeed on its second attempt`, async () => {
        const attempts = await client.getAttempts(task.taskId);
        return attempts.length === 2 && attempts[1].status === 'success';
      });
    }
  });

  it('lists the schedules, follows their tasks, triggers, pauses, resumes and deletes them', async () => {
    await client.upsertSchedule({
      id: 'nightly-report',
      name: 'email',
      cron: '0 3 * * *',
      timezone: 'Europe/Berlin',
      payload: { report: 'nightly' },
    });
    await client.upsertSchedule({ id: 'heartbeat', name: 'email', every: 2000 });
    try {
      await page.goto(dashboard);
      await page.getByRole('link', { name: 'Schedules', exact: true }).click();
      await page.getByRole('heading', { name: 'Schedules', exact: true }).waitFor();
      const nightly = page.locator('tr[data-schedule="nightly-report"]');
      await nightly.getByText('0 3 * * *').waitFor();
      expect(await nightly.getByText('Europe/Berlin').count()).toBe(1);
      expect(await nightly.locator('[data-paused="false"]').count()).toBe(1);
      expect(await nightly.getByText('not yet').count()).toBe(1);
      // Its next run: 03:00 in Berlin, the day's 01:00 or 02:00 UTC (the browser's zone is UTC).
      expect(await nightly.locator('td').nth(3).textContent()).toMatch(/0[12]:00:00/);

      // A tick of the heartbeat shows up live as its last run, linked to its task.
      const heartbeat = page.locator('tr[data-schedule="heartbeat"]');
      await heartbeat.getByText('every 2 s').waitFor();
      await heartbeat.getByText('Succeeded').waitFor();
      await heartbeat.getByRole('button', { name: 'Pause' }).click();
      await heartbeat.locator('[data-paused="true"]').waitFor();
      expect(await heartbeat.locator('td').nth(3).textContent()).toBe('—');
      expect((await client.getSchedule('heartbeat'))?.paused).toBe(true);
      await page.mouse.move(0, 0);
      await shot(page, 'schedules');
      const last = (await client.getSchedule('heartbeat'))!.lastTask!;
      await heartbeat.locator(`a[href$="${last.taskId}"]`).click();
      await page.getByRole('heading', { name: /email/ }).waitFor();
      await page.getByText(/^heartbeat@\d{4}-\d\d-\d\dT[\d:.]+Z$/).waitFor();
      await page.goBack();

      // Trigger now: the task it sent is linked in the row, and runs.
      await nightly.getByRole('button', { name: 'Trigger now' }).click();
      const triggered = nightly.getByText('Triggered:').getByRole('link');
      await triggered.waitFor();
      const taskId = await triggered.textContent();
      await triggered.click();
      await page.getByRole('heading', { name: /email/ }).waitFor();
      await page.locator('h1').getByText('Succeeded').waitFor();
      expect(page.url()).toContain(`#/tasks/${taskId}`);
      expect((await client.getTask(taskId!))?.payload).toEqual({ report: 'nightly' });
      await page.goBack();

      await heartbeat.getByRole('button', { name: 'Resume' }).click();
      await heartbeat.locator('[data-paused="false"]').waitFor();
      expect((await client.getSchedule('heartbeat'))?.paused).toBe(false);
      await heartbeat.getByRole('button', { name: 'Delete' }).click();
      const dialog = page.getByRole('dialog');
      await dialog.getByText('Delete the schedule heartbeat?').waitFor();
      await dialog.getByRole('button', { name: 'Delete' }).click();
      await heartbeat.waitFor({ state: 'detached' });
      expect(await client.getSchedule('heartbeat')).toBeNull();
      expect(await nightly.count()).toBe(1);
    } finally {
      for (const id of ['nightly-report', 'heartbeat']) {
        await client.removeSchedule(id).catch(() => {});
      }
    }
  });

  it('pauses the low priority from the overview: its tasks wait until it is resumed', async () => {
    try {
      await page.goto(dashboard);
      const low = page.locator('li[data-priority="low"]');
      const all = page.locator('li[data-priority="all"]');
      await low.locator('[data-paused="false"]').waitFor();
      expect(await page.locator('li[data-code="LOW_PRIORITY_PAUSED"]').count()).toBe(0);
      await low.getByRole('button', { name: 'Pause' }).click();
      const dialog = page.getByRole('dialog');
      await dialog.getByText('Pause the low priority?').waitFor();
      await dialog.getByRole('button', { name: 'Pause' }).click();
      await low.locator('[data-paused="true"]', { hasText: 'Paused' }).waitFor();
      await all.locator('[data-paused="true"]', { hasText: 'Partly paused' }).waitFor();
      expect(await page.locator('li[data-priority="high"] [data-paused="false"]').count()).toBe(1);
      await page.locator('li[data-code="LOW_PRIORITY_PAUSED"]').waitFor();
      expect((await client.pauses()).low.paused).toBe(true);
      // Once the broker counts no consumer on the low priority queue, nothing can take a task.
      await waitFor('the worker to stop consuming the low priority', async () =>
        (await client.queues()).queues.every((q) => q.kind !== 'low' || q.consumers === 0),
      );

      // A task sent now stays in its queue: the overview shows it ready, not taken.
      const task = await client.sendTask({ name: 'email', priority: 'low', payload: { held: 1 } });
      await page
        .locator('.tile', { hasText: 'Ready, low priority' })
        .locator('.tile-value', { hasText: /^1$/ })
        .waitFor();
      expect((await client.getTask(task.taskId))?.status).toBe('queued');
      await page.mouse.move(0, 0);
      await shot(page, 'overview-paused');

      await low.getByRole('button', { name: 'Resume' }).click();
      await low.locator('[data-paused="false"]').waitFor();
      await all.locator('[data-paused="false"]').waitFor();
      await page.locator('li[data-code="LOW_PRIORITY_PAUSED"]').waitFor({ state: 'detached' });
      await waitFor(
        'the held task to run once resumed',
        async () => (await client.getTask(task.taskId))?.status === 'success',
      );
    } finally {
      // Never leave the namespace paused for the next tests.
      await client.resume('low');
    }
  });

  it('shows the overview and the workers, in light and dark themes', async () => {
    await client.sendTask({ name: 'email', delay: 600_000 });
    await page.goto(dashboard);
    await page.getByRole('heading', { name: 'Queues' }).waitFor();
    await page.locator('.chart canvas').waitFor();
    await page.locator('.live').getByText('Live').waitFor();
    await shot(page, 'overview');
    // A hidden tab stops its updates (the stream closes), and takes them up again when shown.
    const visibility = (state: 'hidden' | 'visible') =>
      page.evaluate(`Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => '${state}' });
        document.dispatchEvent(new Event('visibilitychange'))`);
    await visibility('hidden');
    await page.locator('.live').getByText('Paused').waitFor();
    await visibility('visible');
    await page.locator('.live').getByText('Live').waitFor();
    await page.getByRole('link', { name: 'Workers', exact: true }).click();
    const worker = page.locator('tr[data-worker]');
    await worker.waitFor();
    expect(await worker.locator('td').nth(1).textContent()).toBe(String(process.pid));
    await shot(page, 'workers');
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.goto(`${dashboard}#/tasks`);
    await page.locator('tbody tr').first().waitFor();
    const background = await page.evaluate('getComputedStyle(document.body).backgroundColor');
    expect(background).toBe('rgb(15, 18, 22)');
    await shot(page, 'tasks-dark');
    await page.emulateMedia({ colorScheme: 'light' });
  });
});

describe('Dashboard in a browser: global prefix, strict CSP, API key, read-only', () => {
  const namespace = uniqueNamespace('dash-ui2');
  let browser: OpenBrowser;

  beforeAll(async () => {
    browser = await openBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await cleanUp(namespace);
  });

  it('works under a global prefix and a strict Content-Security-Policy, with no console error and no request elsewhere', async () => {
    const app = await startHttpApp(
      { namespace },
      {
        providers: [EmailHandler],
        extras: { startDashboard: true },
        globalPrefix: 'admin',
        configure: (nest) =>
          nest.use(
            (
              _request: unknown,
              response: { setHeader(n: string, v: string): void },
              next: () => void,
            ) => {
              response.setHeader('Content-Security-Policy', "default-src 'self'");
              next();
            },
          ),
      },
    );
    const page = await browser.context.newPage();
    try {
      const problems = watchPage(page, app.origin);
      const task = await app.app
        .get(CogmanClient)
        .sendTask({ name: 'email', payload: { a: [1, 'two'] } });
      const answer = await page.goto(`${app.origin}/admin/cogman/dashboard`);
      expect(answer?.headers()['content-security-policy']).toBe("default-src 'self'");
      expect(page.url()).toBe(`${app.origin}/admin/cogman/dashboard/`);
      await page.getByRole('heading', { name: 'Queues' }).waitFor();
      await page.getByText('Throughput over time needs the MongoDB archive').waitFor();
      await page.getByRole('link', { name: 'Tasks', exact: true }).click();
      await page.getByText('needs the MongoDB archive').waitFor();
      // Without the archive a task is still found by its id.
      await page.getByLabel('Task id').fill(task.taskId);
      await page.getByRole('button', { name: 'Open' }).click();
      await page.getByRole('heading', { name: /email/ }).waitFor();
      await page.getByText('two').waitFor();
      await page.getByRole('link', { name: 'Dead letters', exact: true }).click();
      await page.getByText('The dead-letter queue is empty.').waitFor();
      await page.getByRole('link', { name: 'Workers', exact: true }).click();
      await page.locator('tr[data-worker]').waitFor();
      await page.getByRole('link', { name: 'Overview', exact: true }).click();
      await page.getByRole('heading', { name: 'Queues' }).waitFor();
      expect(problems).toEqual({ consoleErrors: [], pageErrors: [], foreignRequests: [] });
    } finally {
      await page.close();
      await app.app.close();
    }
  });

  it('works behind a proxy that strips a prefix and cuts streams, by polling', async () => {
    // A namespace of its own: the dead letter it makes would show in the next tests' pages.
    const own = uniqueNamespace('dash-ui-proxy');
    const app = await startHttpApp(
      { namespace: own, unknownTaskGracePeriod: 0 },
      { providers: [EmailHandler], extras: { startDashboard: true } },
    );
    const proxy = await stripPrefixProxy('/ops', new URL(app.origin).port);
    const page = await browser.context.newPage();
    try {
      const origin = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
      const problems = watchPage(page, origin);
      await page.goto(`${origin}/ops/cogman/dashboard`);
      expect(page.url()).toBe(`${origin}/ops/cogman/dashboard/`);
      await page.getByRole('heading', { name: 'Queues' }).waitFor();
      await page.locator('.live').getByText('Polling').waitFor();
      // Still live: a message dead-lettered now shows up in the navigation without a reload.
      expect(await page.locator('nav .pill').count()).toBe(0);
      await app.app.get(CogmanClient).sendTask({ name: 'nobody-handles-it' });
      await page.locator('nav .pill').getByText('1').waitFor();
      await page.getByRole('link', { name: 'Workers', exact: true }).click();
      await page.locator('tr[data-worker]').waitFor();
      expect(problems.foreignRequests).toEqual([]);
      expect(problems.pageErrors).toEqual([]);
    } finally {
      await page.close();
      await new Promise((resolve) => proxy.close(resolve));
      await app.app.close();
      await cleanUp(own);
    }
  });

  it('asks for the API key once and keeps it for the browser session', async () => {
    const key = 'dashboard-browser-key-0123456789';
    const app = await startHttpApp(
      { namespace, restApiKey: key },
      { providers: [EmailHandler], extras: { startDashboard: true } },
    );
    const page = await browser.context.newPage();
    try {
      await page.goto(`${app.api}/dashboard/`);
      await page.getByRole('heading', { name: 'API key' }).waitFor();
      await page.getByLabel('Key').fill('not-the-key-at-all-0000');
      await page.getByRole('button', { name: 'Open the dashboard' }).click();
      await page.getByText('The API key is not valid').waitFor();
      await page.getByLabel('Key').fill(key);
      await page.getByRole('button', { name: 'Open the dashboard' }).click();
      await page.getByRole('heading', { name: 'Queues' }).waitFor();
      expect(await page.evaluate('Object.keys(localStorage)')).not.toContain(
        'cogman-dashboard-api-key',
      );
      await page.reload();
      await page.getByRole('heading', { name: 'Queues' }).waitFor();
      expect(await page.getByRole('heading', { name: 'API key' }).count()).toBe(0);
    } finally {
      await page.close();
      await app.app.close();
    }
  });

  it('hides and refuses every action when read-only', async () => {
    const app = await startHttpApp(
      { namespace },
      {
        providers: [EmailHandler],
        extras: { startDashboard: true, dashboard: { readOnly: true } },
      },
    );
    const page = await browser.context.newPage();
    try {
      const task = await app.app.get(CogmanClient).sendTask({ name: 'email', delay: 600_000 });
      await page.goto(`${app.api}/dashboard/#/tasks/${task.taskId}`);
      await page.getByRole('heading', { name: /email/ }).waitFor();
      await page.getByText('read-only').waitFor();
      expect(await page.locator('main button').allTextContents()).toEqual([]);
      await page.getByRole('link', { name: 'Dead letters', exact: true }).click();
      await page.getByText('The dead-letter queue is empty.').waitFor();
      expect(await page.getByRole('button', { name: /Redrive|Discard/ }).count()).toBe(0);
      const status = await page.evaluate(async (id) => {
        const response = await fetch(`../tasks/${id}/cancel`, {
          method: 'POST',
          headers: { 'x-cogman-dashboard': '1', 'content-type': 'application/json' },
          body: '{}',
        });
        return response.status;
      }, task.taskId);
      expect(status).toBe(403);
      expect((await app.app.get(CogmanClient).getTask(task.taskId))?.status).toBe('scheduled');

      // Schedules and pauses are shown, with no action, and their actions are refused.
      const client = app.app.get(CogmanClient);
      await client.upsertSchedule({ id: 'read-only-report', name: 'email', cron: '0 3 * * *' });
      await page.getByRole('link', { name: 'Schedules', exact: true }).click();
      await page.locator('tr[data-schedule="read-only-report"] [data-paused="false"]').waitFor();
      expect(await page.locator('main button').allTextContents()).toEqual([]);
      await page.getByRole('link', { name: 'Overview', exact: true }).click();
      await page.locator('li[data-priority="low"] [data-paused="false"]').waitFor();
      expect(await page.locator('main button').allTextContents()).toEqual([]);
      const refused = await page.evaluate(async () => {
        const headers = { 'x-cogman-dashboard': '1', 'content-type': 'application/json' };
        // One after the other: parallel requests would open sockets the browser keeps.
        const statuses = [];
        for (const [path, method] of [
          ['../queues/low/pause', 'POST'],
          ['../schedules/read-only-report/pause', 'POST'],
          ['../schedules/read-only-report', 'DELETE'],
        ]) {
          const body = method === 'POST' ? '{}' : undefined;
          statuses.push((await fetch(path, { method, headers, body })).status);
        }
        return statuses;
      });
      expect(refused).toEqual([403, 403, 403]);
      expect((await client.pauses()).low.paused).toBe(false);
      expect((await client.getSchedule('read-only-report'))?.paused).toBe(false);
      await client.removeSchedule('read-only-report');
    } finally {
      await page.close();
      await app.app.close();
    }
  });
});

/**
 * A reverse proxy on loopback that serves the application under `prefix` (removed on the way in)
 * and refuses event streams, as a proxy that buffers answers would break them.
 */
async function stripPrefixProxy(prefix: string, port: string): Promise<Server> {
  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    if (!url.startsWith(`${prefix}/`)) {
      res.writeHead(404).end();
      return;
    }
    if (url.includes('/overview/stream')) {
      res.writeHead(502).end();
      return;
    }
    const upstream = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path: url.slice(prefix.length),
        method: req.method,
        headers: req.headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}
