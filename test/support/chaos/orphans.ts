import { join } from 'node:path';
import { waitFor } from '../wait';
import { pidAlive } from './process-identity';
import { ServiceProcess } from './service-process';

/** What a test process that is about to die started: its services' PIDs and temp dirs. */
export interface Orphans {
  pids: number[];
  dirs: string[];
  /** Of `pids`, those that were running just before the kill. */
  runningAtKill: number[];
}

/**
 * For a spec proving the watchdog: runs `script` (JavaScript; `require` loads the repo's
 * TypeScript, relative to the repo root) in a test process of its own. The script starts chaos
 * services, prints one JSON line `{ "pids": [...], "dirs": [...] }` and stays up; once it has
 * printed, that process is killed with SIGKILL, as a crashed test run would die, and what it
 * printed is returned: the processes and dirs the watchdog must now remove.
 */
export async function orphansOfKilledProcess(script: string, timeout = 90_000): Promise<Orphans> {
  const fixture = ServiceProcess.spawn(
    'orphans fixture',
    process.execPath,
    ['-r', '@swc-node/register', '-e', script],
    { cwd: join(__dirname, '..', '..', '..') },
  );
  try {
    const line = await waitFor(
      'the orphans fixture to start its services',
      () => {
        if (!fixture.running) throw new Error(`the fixture exited:\n${fixture.output()}`);
        return fixture
          .output()
          .split('\n')
          .find((text) => text.startsWith('{'));
      },
      { timeout, interval: 100 },
    );
    const orphans = JSON.parse(line) as Omit<Orphans, 'runningAtKill'>;
    return { ...orphans, runningAtKill: orphans.pids.filter(pidAlive) };
  } finally {
    await fixture.kill();
  }
}
