import { Inject, Injectable } from '@nestjs/common';
import { setTimeout as delay } from 'node:timers/promises';
import { RESOLVED_OPTIONS, type ResolvedCogmanOptions } from '../config';
import { TaskPublishError } from '../errors';
import { TaskLog } from '../store/task-log';
import { UniqueKeyStore } from '../store/unique-keys.store';
import {
  retryTaskId,
  uniqueKeyOf,
  uniqueSetting,
  type BuiltTask,
  type SendTaskOptions,
  type TaskRecord,
  type TaskStatus,
  type UniqueTaskOptions,
} from '../task';
import { TaskHandlerRegistry } from '../worker/task-handler.registry';

/** Statuses that free a unique key: the task is over (a `retry` is not: its next attempt runs). */
const OVER: ReadonlySet<TaskStatus> = new Set(['success', 'failed', 'cancelled']);

/** How often a sender that lost a key looks for the record of the task that holds it. */
const RECORD_POLL = 20;

/** How many times a send tries again after freeing a key whose task is over or gone. */
const ROUNDS = 5;

/** A unique send's answer: the new task's status, or the record of the task holding the key. */
export type UniqueSendResult = { status: TaskStatus } | { existing: TaskRecord };

/**
 * Unique tasks (`sendTask({ unique })`). A send takes the task's key in Redis (`SET NX`, one
 * winner among any number of concurrent senders in any number of processes), records the task
 * and only then sends it. A sender that finds the key taken answers with the record of the task
 * holding it (its current attempt), unless that task is over (`success`, `failed`, `cancelled`:
 * the key is free again; with `ttl`, the key is held for `ttl` ms whatever happens) or gone
 * (its sender died between taking the key and recording the task): then it frees the key (only
 * if that task still holds it) and tries again. A send that fails frees its key.
 */
@Injectable()
export class UniqueTasks {
  constructor(
    private readonly keys: UniqueKeyStore,
    private readonly log: TaskLog,
    private readonly registry: TaskHandlerRegistry,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedCogmanOptions,
  ) {}

  /** The unique setting of a task: its own, else its handler's (where registered here). */
  settingOf(options: SendTaskOptions): UniqueTaskOptions | null {
    return uniqueSetting(options.unique ?? this.registry.get(options.name)?.options.unique);
  }

  async send(
    { task, runAt }: BuiltTask,
    unique: UniqueTaskOptions,
    send: () => Promise<TaskStatus>,
  ): Promise<UniqueSendResult> {
    const key = uniqueKeyOf(task, unique);
    // Without a ttl, the key is held until the task is over; this bound only keeps a key whose
    // task record has expired from lasting for ever.
    const hold =
      unique.ttl ??
      this.options.redisTtl + Math.max(0, (runAt?.getTime() ?? 0) - task.createdAt.getTime());
    for (let round = 0; round < ROUNDS; round++) {
      if (await this.keys.take(key, task.taskId, hold)) {
        try {
          return { status: await send() };
        } catch (error) {
          await this.keys.release(key, task.taskId).catch(() => {});
          throw error;
        }
      }
      const holder = await this.keys.holder(key);
      if (holder === null) continue;
      const existing = await this.currentAttempt(holder);
      if (existing && (unique.ttl !== undefined || !OVER.has(existing.status))) {
        return { existing };
      }
      await this.keys.release(key, holder);
    }
    throw new TaskPublishError(
      task.taskId,
      `its unique key "${key}" kept changing hands; try again`,
    );
  }

  /**
   * The latest attempt of the task holding a key. Its sender records it right after taking the
   * key: wait for that record up to `requestTimeout`, then take the task as gone.
   */
  private async currentAttempt(originalTaskId: string): Promise<TaskRecord | null> {
    const deadline = Date.now() + this.options.requestTimeout;
    let first = await this.log.get(originalTaskId);
    while (!first && Date.now() < deadline) {
      await delay(RECORD_POLL);
      first = await this.log.get(originalTaskId);
    }
    if (!first) return null;
    let current = first;
    for (let attempt = 2; ; attempt++) {
      const next = await this.log.get(retryTaskId(originalTaskId, attempt));
      if (!next) return current;
      current = next;
    }
  }
}
