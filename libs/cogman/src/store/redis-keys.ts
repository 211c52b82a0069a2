/**
 * Every Redis key and channel of a namespace, in one place. The task log, the schedule, the
 * cancellations and the worker reports all live under `cogman:[<namespace>:]`.
 */
export interface RedisKeys {
  /** What every key of the namespace starts with. */
  readonly prefix: string;
  /** Hash: the record of one attempt. */
  task(taskId: string): string;
  /** Sorted set: scheduled attempts by due time (ms). */
  readonly scheduled: string;
  /** Sorted set: scheduled attempts a scheduler took, by the end of its lease (ms). */
  readonly claimed: string;
  /** Pub/sub channel: ids of cancelled attempts, for the workers running or receiving them. */
  readonly cancelChannel: string;
  /** Sorted set: cancelled attempts, by when the entry lapses (ms); workers mirror it. */
  readonly cancelled: string;
  /**
   * Pub/sub channel: ids of attempts whose outcome was recorded while someone waited for it
   * (`waitForResult` flags the record; only such records publish).
   */
  readonly resultChannel: string;
  /**
   * Sorted set: the rate limiter of one task name: attempt id → when it starts, or may start
   * (ms; reservations made for attempts over the limit lie in the future).
   */
  rateLimit(taskName: string): string;
  /** Sorted set: the running attempts of one group of a task name → when their lease lapses (ms). */
  groupLeases(taskName: string, group: string): string;
  /** Sorted set: worker id → when its report lapses (ms). */
  readonly workers: string;
  /** Hash: one worker's report (queue → deliveries held, plus `pid`, `host` and `at`). */
  worker(workerId: string): string;
  /** Hash: paused priorities of the namespace (`high`, `low`) → since when (ms). */
  readonly paused: string;
  /** String: the original task id holding a unique key (`sendTask({ unique })`). */
  unique(key: string): string;
  /** Set: ids of the recurring tasks' schedules. */
  readonly schedules: string;
  /** Hash: one schedule (definition, source, paused, nextRun, lastTick, lastTaskId, claim). */
  schedule(id: string): string;
  /** Sorted set: schedule id → its next tick (ms); paused schedules are not in it. */
  readonly schedulesDue: string;
  /** Sorted set: schedules a scheduler claimed, by the end of its lease (ms). */
  readonly schedulesClaimed: string;
}

export function redisKeys(namespace: string): RedisKeys {
  const prefix = namespace ? `cogman:${namespace}:` : 'cogman:';
  return {
    prefix,
    task: (taskId) => `${prefix}task:${taskId}`,
    scheduled: `${prefix}scheduled`,
    claimed: `${prefix}scheduled:claimed`,
    cancelChannel: `${prefix}cancel`,
    cancelled: `${prefix}cancelled`,
    resultChannel: `${prefix}results`,
    rateLimit: (taskName) => `${prefix}limit:rate:${taskName}`,
    groupLeases: (taskName, group) => `${prefix}limit:group:${taskName}:${group}`,
    workers: `${prefix}workers`,
    worker: (workerId) => `${prefix}worker:${workerId}`,
    paused: `${prefix}paused`,
    unique: (key) => `${prefix}unique:${key}`,
    schedules: `${prefix}schedules`,
    schedule: (id) => `${prefix}schedule:${id}`,
    schedulesDue: `${prefix}schedules:due`,
    schedulesClaimed: `${prefix}schedules:claimed`,
  };
}
