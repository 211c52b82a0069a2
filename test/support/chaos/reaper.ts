import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import type { ProcessIdentity } from './process-identity';

/** Every temp dir of the chaos services starts with this; nothing else is ever removed. */
export const CHAOS_DIR_PREFIX = join(tmpdir(), 'cogman-chaos-');

/**
 * The watchdog, run with `node -e`. It reads lines from its stdin:
 *   +p <pid> <startTime> | -p <pid>     a process to kill (checked against /proc first)
 *   +c <marker> | -c <marker>           kill any process whose command line holds <marker>
 *   +d <dir> | -d <dir>                 a directory to remove
 * and acts on them once stdin closes: when the test process exits, however it exits, or when
 * it releases the watchdog with nothing left to do.
 */
const WATCHDOG = `
const fs = require('fs');
const procs = new Map(), markers = new Set(), dirs = new Set();
let buffer = '';
const stat = (pid) => {
  try {
    const s = fs.readFileSync('/proc/' + pid + '/stat', 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ')[19];
  } catch { return null; }
};
const kill = (pid) => { try { process.kill(Number(pid), 'SIGKILL'); } catch {} };
const reap = () => {
  for (const [pid, start] of procs) if (start === '-' || stat(pid) === start) kill(pid);
  if (markers.size > 0 && fs.existsSync('/proc')) {
    for (const pid of fs.readdirSync('/proc').filter((name) => /^[0-9]+$/.test(name))) {
      let cmdline = '';
      try { cmdline = fs.readFileSync('/proc/' + pid + '/cmdline', 'utf8').split('\\0').join(' '); } catch {}
      for (const marker of markers) if (cmdline.includes(marker)) kill(pid);
    }
  }
  for (const dir of dirs) { try { fs.rmSync(dir, { recursive: true, force: true }); } catch {} }
  process.exit(0);
};
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  buffer += chunk;
  for (let end = buffer.indexOf('\\n'); end >= 0; end = buffer.indexOf('\\n')) {
    const line = buffer.slice(0, end);
    buffer = buffer.slice(end + 1);
    const op = line.slice(0, 2), arg = line.slice(3);
    if (op === '+p') procs.set(arg.split(' ')[0], arg.split(' ')[1]);
    else if (op === '-p') procs.delete(arg);
    else if (op === '+c') markers.add(arg);
    else if (op === '-c') markers.delete(arg);
    else if (op === '+d') dirs.add(arg);
    else if (op === '-d') dirs.delete(arg);
  }
});
process.stdin.on('end', reap);
process.stdin.on('error', reap);
process.on('SIGTERM', reap);
process.on('SIGHUP', reap);
`;

/**
 * The last line of defence against leaked services. Teardown (`ChaosServices.stopAll`) stops
 * everything first; if the test process dies before it can (a crash, Ctrl-C, SIGKILL, a Jest
 * timeout that kills the worker), the watchdog — a small process in its own session, holding a
 * pipe from this one — sees the pipe close and kills every process still registered (by PID,
 * checked against its start time) and removes their temp dirs. (A process 'exit' listener
 * would not do: Jest gives each spec a sandboxed `process` whose 'exit' never fires, and no
 * listener runs on SIGKILL.)
 */
class Reaper {
  private watchdog?: ChildProcessByStdio<Writable, null, null>;
  private readonly processes = new Map<number, { id: ProcessIdentity; label: string }>();
  private readonly markers = new Set<string>();
  private readonly dirs = new Set<string>();

  /** Registers a process this test run started. */
  track(id: ProcessIdentity, label: string): void {
    this.processes.set(id.pid, { id, label });
    this.send(`+p ${id.pid} ${id.startTime ?? '-'}`);
  }

  untrack(id: ProcessIdentity): void {
    if (this.processes.get(id.pid)?.id.startTime !== id.startTime) return;
    this.processes.delete(id.pid);
    this.send(`-p ${id.pid}`);
  }

  /**
   * Registers a marker (a unique temp path) that only the command lines of our own processes
   * hold: for a daemon between its start and the moment its PID is known.
   */
  trackCommandLine(marker: string): void {
    if (!marker.startsWith(CHAOS_DIR_PREFIX)) throw new Error(`Not a chaos path: ${marker}`);
    this.markers.add(marker);
    this.send(`+c ${marker}`);
  }

  untrackCommandLine(marker: string): void {
    this.markers.delete(marker);
    this.send(`-c ${marker}`);
  }

  /** Registers a temp dir to remove if the test process dies. */
  trackDir(dir: string): void {
    if (!dir.startsWith(CHAOS_DIR_PREFIX)) throw new Error(`Not a chaos dir: ${dir}`);
    this.dirs.add(dir);
    this.send(`+d ${dir}`);
  }

  untrackDir(dir: string): void {
    this.dirs.delete(dir);
    this.send(`-d ${dir}`);
  }

  /** The processes registered and not yet seen to exit. */
  tracked(): { pid: number; label: string }[] {
    return [...this.processes.values()].map(({ id, label }) => ({ pid: id.pid, label }));
  }

  /** The temp dirs registered and not yet removed. */
  trackedDirs(): string[] {
    return [...this.dirs];
  }

  /** PID of the watchdog while one runs. */
  get watchdogPid(): number | undefined {
    return this.watchdog?.pid;
  }

  /** Lets the watchdog exit once nothing is registered (after a clean teardown). */
  release(): void {
    if (this.processes.size > 0 || this.markers.size > 0 || this.dirs.size > 0) return;
    this.watchdog?.stdin.end();
    this.watchdog = undefined;
  }

  private send(line: string): void {
    if (!this.watchdog) {
      if (line.startsWith('-')) return;
      this.watchdog = this.spawnWatchdog();
    }
    this.watchdog.stdin.write(`${line}\n`);
  }

  private spawnWatchdog(): ChildProcessByStdio<Writable, null, null> {
    const watchdog = spawn(process.execPath, ['-e', WATCHDOG], {
      stdio: ['pipe', 'ignore', 'ignore'],
      // Its own session: a Ctrl-C aimed at the tests must not reach it before it has reaped.
      detached: true,
    });
    watchdog.on('error', () => {});
    watchdog.stdin.on('error', () => {});
    // Neither the watchdog nor its pipe keeps the test process alive.
    watchdog.unref();
    (watchdog.stdin as Socket).unref();
    return watchdog;
  }
}

/** The one reaper of this test process (Jest loads it once per spec file). */
export const reaper = new Reaper();
