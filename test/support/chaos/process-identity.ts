import { readdirSync, readFileSync } from 'node:fs';
import { waitFor } from '../wait';

/**
 * A process this test run started, known by its PID and its start time (from /proc), so that a
 * PID the system has since given to another process is never signalled.
 */
export interface ProcessIdentity {
  pid: number;
  /** Field 22 of /proc/<pid>/stat; null where /proc is not available. */
  startTime: string | null;
}

function readStat(pid: number, task = ''): { state: string; startTime: string } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/${task}stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses; the fields after it do not.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0], startTime: fields[19] };
  } catch {
    return null;
  }
}

const hasProc = readStat(process.pid) !== null;

/** The identity of a running process, to be checked before it is signalled. */
export function identify(pid: number): ProcessIdentity {
  return { pid, startTime: readStat(pid)?.startTime ?? null };
}

/**
 * Whether a thread of the process has not finished exiting. A killed multi-threaded process (an
 * Erlang VM) shows its main thread as a zombie while its other threads are still exiting, and
 * until the last of them has, its sockets and files stay open.
 */
function threadsExiting(pid: number): boolean {
  let threads: string[];
  try {
    threads = readdirSync(`/proc/${pid}/task`);
  } catch {
    return false;
  }
  return threads.some((tid) => {
    const state = readStat(pid, `task/${tid}/`)?.state;
    return state !== undefined && state !== 'Z' && state !== 'X';
  });
}

/**
 * True while the process runs and is still the one identified. A zombie counts as gone once all
 * its threads have exited (then it holds nothing but its PID).
 */
export function isRunning({ pid, startTime }: ProcessIdentity): boolean {
  if (!hasProc) {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }
  const stat = readStat(pid);
  if (stat === null || stat.startTime !== startTime) return false;
  return stat.state !== 'Z' || threadsExiting(pid);
}

/** Sends `signal` to the process if it is still the one identified; false if it is gone. */
export function signalProcess(id: ProcessIdentity, signal: NodeJS.Signals): boolean {
  if (!isRunning(id)) return false;
  try {
    process.kill(id.pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Waits until the process has exited (polled; for processes that are not our children). */
export async function waitForExit(id: ProcessIdentity, what: string, timeout = 30_000) {
  await waitFor(`${what} (PID ${id.pid}) to exit`, () => !isRunning(id), { timeout, interval: 20 });
}

/** True while some process has this PID and has not finished exiting (see isRunning). */
export function pidAlive(pid: number): boolean {
  return isRunning(identify(pid));
}

/**
 * Processes whose command line holds `marker` (a unique temp path of ours), from /proc; empty
 * where /proc is missing.
 */
export function processesMentioning(marker: string): ProcessIdentity[] {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return [];
  }
  return pids
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').includes(marker);
      } catch {
        return false;
      }
    })
    .map((pid) => identify(Number(pid)))
    .filter(isRunning);
}
