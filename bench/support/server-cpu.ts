import { readdirSync, readFileSync } from 'node:fs';

/**
 * The services whose CPU time a run reports: process name (/proc/<pid>/comm) and, for the Erlang
 * VM, what tells the broker from a short-lived `rabbitmqctl` (also a beam.smp) in its command line.
 */
const SERVERS = {
  redis: { comm: 'redis-server', cmdline: '' },
  rabbitmq: { comm: 'beam.smp', cmdline: '-s\0rabbit\0boot' },
} as const;
export type ServerName = keyof typeof SERVERS;

/** Linux clock ticks per second (USER_HZ), as /proc/<pid>/stat counts CPU time. */
const TICKS_PER_SECOND = 100;

/**
 * CPU time (ms, user + system) used so far by the local Redis and RabbitMQ servers, read from
 * /proc. They are shared, so a run's figure includes whatever else used them meanwhile; null
 * where /proc is not readable.
 */
export function serverCpuMs(): Record<ServerName, number | null> {
  const totals: Record<ServerName, number | null> = { redis: null, rabbitmq: null };
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((entry) => /^\d+$/.test(entry));
  } catch {
    return totals;
  }
  for (const pid of pids) {
    try {
      const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      const server = (Object.keys(SERVERS) as ServerName[]).find((s) => SERVERS[s].comm === comm);
      if (!server) continue;
      const { cmdline } = SERVERS[server];
      if (cmdline && !readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(cmdline)) continue;
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // Fields after the parenthesised name: utime and stime are the 12th and 13th.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ticks = Number(fields[11]) + Number(fields[12]);
      totals[server] = (totals[server] ?? 0) + (ticks * 1000) / TICKS_PER_SECOND;
    } catch {
      // The process ended while being read.
    }
  }
  return totals;
}

/** CPU used by each server between two readings. */
export function serverCpuSince(
  before: Record<ServerName, number | null>,
): Record<ServerName, number | null> {
  const now = serverCpuMs();
  const delta = (s: ServerName) =>
    before[s] === null || now[s] === null ? null : now[s] - before[s];
  return { redis: delta('redis'), rabbitmq: delta('rabbitmq') };
}
