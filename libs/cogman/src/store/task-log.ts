import { Inject, Injectable, Optional } from '@nestjs/common';
import type { TaskRecord } from '../task';
import { TASK_ARCHIVE, type TaskArchive } from './task-archive';
import {
  TASK_LOG_STORE,
  type StoredTask,
  type TaskLogStore,
  type TaskStatusChange,
  type TaskStatusResult,
} from './task-log.store';

/**
 * Where every status change goes: the Redis log (awaited: it decides what happens next) and,
 * when configured, the MongoDB archive (batched in the background, unless `durable`).
 */
@Injectable()
export class TaskLog {
  constructor(
    @Inject(TASK_LOG_STORE) private readonly store: TaskLogStore,
    @Optional() @Inject(TASK_ARCHIVE) private readonly archive: TaskArchive | null = null,
  ) {}

  get archived(): boolean {
    return this.archive !== null;
  }

  /**
   * Records a change in Redis and archives it if it applied there. `durable`: also wait until
   * the archive has it.
   */
  async record(change: TaskStatusChange, { durable = false } = {}): Promise<TaskStatusResult> {
    const result = await this.store.record(change);
    if (this.archive && result.applied) {
      const archiving = this.archive.write(change);
      if (durable) await archiving;
      else archiving.catch(() => {});
    }
    return result;
  }

  /** The record and the attempt as it travels (Redis only). */
  load(taskId: string): Promise<StoredTask | null> {
    return this.store.load(taskId);
  }

  /** A record from Redis, or from the archive once it has expired from Redis. */
  async get(taskId: string): Promise<TaskRecord | null> {
    return (await this.store.get(taskId)) ?? (await this.archive?.get(taskId)) ?? null;
  }
}
