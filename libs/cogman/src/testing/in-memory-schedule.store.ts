import { Injectable } from '@nestjs/common';
import type {
  ClaimedTick,
  ScheduleSource,
  ScheduleStorage,
  StoredSchedule,
} from '../store/schedule.store';
import type { TaskScheduleDefinition } from '../task';

interface Entry {
  definition: string;
  source: ScheduleSource;
  paused: boolean;
  nextRun: number;
  lastTick: number | null;
  lastTaskId: string | null;
  updatedAt: number;
  claim: string | null;
}

/**
 * Recurring schedules in memory, for the testing kit: the semantics of the Redis store's scripts
 * (an unchanged upsert keeps the state; claims with a token and a lease; a voided claim's commit
 * does nothing), on the kit's clock.
 */
@Injectable()
export class InMemoryScheduleStore implements ScheduleStorage {
  private readonly entries = new Map<string, Entry>();
  /** Schedule id → end of its claim's lease. */
  private readonly claimed = new Map<string, number>();

  readonly available = true;

  upsert(
    definition: TaskScheduleDefinition,
    source: ScheduleSource,
    nextRun: number,
    now: number,
  ): Promise<boolean> {
    const json = JSON.stringify(definition);
    const entry = this.entries.get(definition.id);
    if (entry?.definition === json) {
      entry.source = source;
      return Promise.resolve(false);
    }
    this.claimed.delete(definition.id);
    this.entries.set(definition.id, {
      definition: json,
      source,
      paused: entry?.paused ?? false,
      nextRun,
      lastTick: entry?.lastTick ?? null,
      lastTaskId: entry?.lastTaskId ?? null,
      updatedAt: now,
      claim: null,
    });
    return Promise.resolve(true);
  }

  remove(id: string): Promise<boolean> {
    this.claimed.delete(id);
    return Promise.resolve(this.entries.delete(id));
  }

  pause(id: string): Promise<boolean> {
    const entry = this.entries.get(id);
    if (!entry) return Promise.resolve(false);
    entry.paused = true;
    entry.claim = null;
    this.claimed.delete(id);
    return Promise.resolve(true);
  }

  resume(id: string, nextRun: number): Promise<boolean> {
    const entry = this.entries.get(id);
    if (!entry) return Promise.resolve(false);
    if (entry.paused) {
      entry.paused = false;
      entry.nextRun = nextRun;
    }
    return Promise.resolve(true);
  }

  get(id: string): Promise<StoredSchedule | null> {
    const entry = this.entries.get(id);
    return Promise.resolve(entry ? stored(entry) : null);
  }

  list(): Promise<StoredSchedule[]> {
    return Promise.resolve(
      [...this.entries.keys()].sort().map((id) => stored(this.entries.get(id)!)),
    );
  }

  claim(now: number, limit: number, lease: number, token: string): Promise<ClaimedTick[]> {
    for (const [id, until] of this.claimed) {
      if (until > now) continue;
      this.claimed.delete(id);
      const entry = this.entries.get(id);
      if (entry) entry.claim = null;
    }
    const due = [...this.entries]
      .filter(([id, entry]) => !entry.paused && !this.claimed.has(id) && entry.nextRun <= now)
      .sort(([, a], [, b]) => a.nextRun - b.nextRun)
      .slice(0, limit);
    return Promise.resolve(
      due.map(([id, entry]) => {
        this.claimed.set(id, now + lease);
        entry.claim = token;
        return {
          id,
          definition: JSON.parse(entry.definition) as TaskScheduleDefinition,
          tick: entry.nextRun,
        };
      }),
    );
  }

  commit(
    id: string,
    token: string,
    nextRun: number,
    sent: { tick: number; taskId: string } | null,
  ): Promise<boolean> {
    const entry = this.entries.get(id);
    if (!entry || entry.claim !== token) return Promise.resolve(false);
    entry.claim = null;
    this.claimed.delete(id);
    entry.nextRun = nextRun;
    if (sent) {
      entry.lastTick = sent.tick;
      entry.lastTaskId = sent.taskId;
    }
    return Promise.resolve(true);
  }
}

function stored(entry: Entry): StoredSchedule {
  return {
    definition: JSON.parse(entry.definition) as TaskScheduleDefinition,
    source: entry.source,
    paused: entry.paused,
    nextRun: entry.nextRun,
    lastTick: entry.lastTick,
    lastTaskId: entry.lastTaskId,
    updatedAt: entry.updatedAt,
  };
}
