import type { Logger } from '@nestjs/common';
import type { CogmanClient, TaskRecord } from '@cogman/nestjs';
import { setTimeout as delay } from 'node:timers/promises';

/** Polls `check` every 100 ms until it holds, for at most `ms`. */
async function until(what: string, check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`The demo gave up waiting for ${what}`);
    await delay(100);
  }
}

const finished = (record: TaskRecord | null) =>
  record !== null && ['success', 'failed', 'cancelled'].includes(record.status);

/**
 * Shows unique tasks, pausing a priority and a recurring schedule, and leaves nothing behind
 * (the schedule is removed, the queues resumed).
 */
export async function showOperations(cogman: CogmanClient, logger: Logger): Promise<void> {
  // Unique: the second send of one key, while the first task is unfinished, creates nothing.
  const unique = { key: 'demo:welcome:user-0' };
  const [first, again] = await cogman.sendTasks([
    { name: 'email', payload: { to: 'user0@example.com', subject: 'Once' }, unique },
    { name: 'email', payload: { to: 'user0@example.com', subject: 'Once' }, unique },
  ]);
  logger.log(
    `Unique: two sends of one key gave ${first.taskId === again.taskId ? 'one task' : 'two tasks'} (deduplicated: ${String(first.deduplicated)}, ${String(again.deduplicated)})`,
  );

  // Pause: low priority tasks wait in their queue until resumed; high priority ones go on.
  await cogman.pause('low');
  await delay(1000); // every worker applies a pause within about a second
  const held = await cogman.sendTask({ name: 'report', payload: { month: '2026-12' } });
  await delay(500);
  const whilePaused = (await cogman.getTask(held.taskId))?.status;
  await cogman.resume('low');
  await until('the held report', async () => finished(await cogman.getTask(held.taskId)));
  logger.log(
    `Pause: a low priority task stayed ${whilePaused} while paused, then ran after resume`,
  );

  // Recurring: a schedule every second; each tick sends one task (primaryKey "<id>@<tick>").
  await cogman.upsertSchedule({ id: 'demo-heartbeat', name: 'heartbeat', every: 1000 });
  await until('a tick to run', async () => {
    const schedule = await cogman.getSchedule('demo-heartbeat');
    return (
      (schedule?.lastRunAt?.getTime() ?? 0) > Date.now() - 500 &&
      schedule?.lastTask?.status === 'success'
    );
  });
  const schedule = await cogman.getSchedule('demo-heartbeat');
  logger.log(
    `Recurring: schedule demo-heartbeat (every 1000 ms) last ran at ${schedule?.lastRunAt?.toISOString()}, next at ${schedule?.nextRunAt?.toISOString()}`,
  );
  await cogman.removeSchedule('demo-heartbeat');
}
