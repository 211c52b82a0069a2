import { Inject, Injectable, Optional } from '@nestjs/common';
import type { TaskRecord } from '../task';
import { TASK_ARCHIVE, type TaskArchive } from './task-archive';
import {
  TASK_LOG_STORE,
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

  /** `durable`: also wait until the archive has the change. */
  async record(change: TaskStatusChange, { durable = false } = {}): Promise<TaskStatusResult> {
    const result = await this.store.record(change);
    if (this.archive) {
      const archiving = this.archive.write(change);
      if (durable) await archiving;
      else archiving.catch(() => {});
    }
    return result;
  }

  /**
   * A record from Redis, or from the archive once it has expired from Redis. While the archive is
   * unreachable, Redis alone answers: reads of live tasks never depend on MongoDB.
   */
  async get(taskId: string): Promise<TaskRecord | null> {
    const record = await this.store.get(taskId);
    if (record || !this.archive?.connected) return record;
    return this.archive.get(taskId);
  }
}
