import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/** Debian's Chromium (`apt-get install chromium`; `.ci/services.sh install` does it). */
export const CHROMIUM = process.env.COGMAN_TEST_CHROMIUM ?? '/usr/bin/chromium';

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** A headless Chromium with a fresh profile, removed on close. */
export interface OpenBrowser {
  context: BrowserContext;
  close(): Promise<void>;
}

export async function openBrowser(
  options: { colorScheme?: 'light' | 'dark' } = {},
): Promise<OpenBrowser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing: run .ci/services.sh install (apt-get install chromium)`,
    );
  }
  const profile = mkdtempSync(join(process.env.TMPDIR ?? tmpdir(), 'cogman-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1280, height: 860 },
    colorScheme: options.colorScheme ?? 'light',
    locale: 'en-GB',
    timezoneId: 'UTC',
  });
  // Generous: the machines are shared, and each wait ends as soon as its condition holds.
  context.setDefaultTimeout(30_000);
  return {
    context,
    close: async () => {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** What a page did that it should not: console errors, uncaught errors, requests elsewhere. */
export interface PageProblems {
  consoleErrors: string[];
  pageErrors: string[];
  foreignRequests: string[];
}

/** Records the problems of a page, given the origin it may talk to. */
export function watchPage(page: Page, origin: string): PageProblems {
  const problems: PageProblems = { consoleErrors: [], pageErrors: [], foreignRequests: [] };
  page.on('console', (message) => {
    if (message.type() === 'error') problems.consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => problems.pageErrors.push(String(error)));
  page.on('request', (request) => {
    const url = request.url();
    if (!url.startsWith(`${origin}/`) && !url.startsWith('data:')) {
      problems.foreignRequests.push(url);
    }
  });
  return problems;
}

/**
 * Where screenshots go: `docs/dashboard/` (committed, shown by the README) when
 * COGMAN_DASHBOARD_SCREENSHOTS=1, else a temp dir, so that a test run leaves the tree clean.
 */
export function screenshotDir(): string {
  const dir = process.env.COGMAN_DASHBOARD_SCREENSHOTS
    ? join(__dirname, '..', '..', 'docs', 'dashboard')
    : join(process.env.TMPDIR ?? tmpdir(), 'cogman-dashboard-screenshots');
  mkdirSync(dir, { recursive: true });
  return dir;
}
