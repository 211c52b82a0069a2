/**
 * Every Redis key and channel of a namespace, in one place. The task log, the schedule, the
 * cancellations, the worker reports, the pauses, the unique keys and the recurring schedules all
 * live under `cogman:{<namespace>}:` (`{cogman}:` for the default namespace): one hash tag, so
 * that in a Redis Cluster every key of a namespace is in one slot, and each script (which touches
 * a task and the schedule, or many tasks, in one step, declaring every key in KEYS) and each
 * MULTI stays on one node.
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

/**
 * The keys of a namespace. Namespaces are letters, digits, `_` and `-`, so `cogman:{<namespace>}:`
 * never meets `{cogman}:` (the default namespace), nor the keys of releases before the hash tag
 * (`legacyRedisKeys`).
 */
export function redisKeys(namespace: string): RedisKeys {
  return keysUnder(namespace ? `cogman:{${namespace}}:` : '{cogman}:');
}

/**
 * The keys of 0.1, before the hash tag: `cogman:[<namespace>:]…`. They are read and moved for one
 * release (see `LegacyRedisKeys`), then forgotten.
 */
export function legacyRedisKeys(namespace: string): RedisKeys {
  return keysUnder(namespace ? `cogman:${namespace}:` : 'cogman:');
}

function keysUnder(prefix: string): RedisKeys {
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
