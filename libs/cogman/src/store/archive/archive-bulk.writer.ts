import { mongo, type AnyBulkWriteOperation } from 'mongoose';
import { ArchiveRecordRefusedError, ArchiveUnavailableError } from '../../errors';
import type { TaskStatusChange } from '../task-log.store';
import { CHUNK_SIZE, DUPLICATE_KEY, messageOf, type ArchiveContext } from './archive.context';
import {
  checkedOperation,
  guardedOperations,
  planTaskChanges,
  type StoredTaskState,
} from './task-archive.writes';
import type { TaskDocument } from './task.schema';

/**
 * Writes batches of status changes as ordered bulk writes, in the server's mode (see
 * `ArchiveWriteMode`): `guarded`, the rank guard in each update's filter; `checked`, the guard
 * checked against the documents read just before, every filter the bare `_id`.
 */
export class ArchiveBulkWriter {
  constructor(private readonly context: ArchiveContext) {}

  /** The sink of the archive's writer: one batch, as ordered bulk writes. */
  async writeBatch(
    changes: readonly TaskStatusChange[],
  ): Promise<ReadonlyMap<string, Error> | void> {
    const { context } = this;
    if (context.closed) throw new ArchiveUnavailableError('Cogman has shut down');
    if (!context.opened) throw new ArchiveUnavailableError('not connected yet');
    const server = await context.traits();
    const plans = planTaskChanges(changes);
    const operations: AnyBulkWriteOperation<TaskDocument>[] = [];
    const owners: string[] = [];
    const add = (taskId: string, ops: AnyBulkWriteOperation<TaskDocument>[]) => {
      operations.push(...ops);
      for (let i = 0; i < ops.length; i++) owners.push(taskId);
    };
    if (server.mode === 'guarded') {
      for (const plan of plans) add(plan.taskId, guardedOperations(plan));
    } else {
      const stored = await context.readMany(
        plans.map((plan) => plan.taskId),
        { status_rank: 1, name: 1 },
      );
      const inserts: [string, AnyBulkWriteOperation<TaskDocument>][] = [];
      const updates: [string, AnyBulkWriteOperation<TaskDocument>][] = [];
      for (const plan of plans) {
        const doc = stored.get(plan.taskId);
        const state: StoredTaskState | null = doc
          ? { rank: doc.status_rank ?? 0, described: doc.name !== undefined }
          : null;
        const operation = checkedOperation(plan, state);
        if (operation)
          ('insertOne' in operation ? inserts : updates).push([plan.taskId, operation]);
      }
      // One operation per task, so their order does not matter: the inserts go in one command.
      for (const [taskId, operation] of [...inserts, ...updates]) add(taskId, [operation]);
    }
    return this.bulkWrite(operations, owners, server.updatesPerChunk);
  }

  /**
   * Sends ordered operations, in chunks of at most `updatesPerChunk` updates. An operation the
   * server refuses for good (a write error other than a duplicate key from a concurrent insert),
   * or one that cannot even be sent (a document too large to encode), gives up its task's
   * remaining operations; the rest is sent on. Any other error is thrown, for the writer to
   * retry the batch (every operation can be sent again).
   */
  async bulkWrite(
    operations: AnyBulkWriteOperation<TaskDocument>[],
    owners: string[],
    updatesPerChunk: number,
  ): Promise<ReadonlyMap<string, Error>> {
    const failures = new Map<string, Error>();
    let start = 0;
    while (start < operations.length) {
      let end = start;
      let updates = 0;
      while (end < operations.length && end - start < CHUNK_SIZE) {
        if (!('insertOne' in operations[end]) && ++updates > updatesPerChunk) break;
        end++;
      }
      await this.sendOrdered(operations.slice(start, end), owners.slice(start, end), failures);
      start = end;
    }
    return failures;
  }

  private async sendOrdered(
    ops: AnyBulkWriteOperation<TaskDocument>[],
    owners: string[],
    failures: Map<string, Error>,
  ): Promise<void> {
    const live = (_op: unknown, i: number) => !failures.has(owners[i]);
    ops = ops.filter(live);
    owners = owners.filter(live);
    if (ops.length === 0) return;
    try {
      // Straight to the driver: the operations are built whole by Cogman, so Mongoose's casting
      // and validation of each one would only cost CPU on the task path.
      await this.context.tasks.collection.bulkWrite(
        ops as Parameters<mongo.Collection['bulkWrite']>[0],
        { ordered: true },
      );
      return;
    } catch (error) {
      const refused = firstWriteError(error);
      if (refused) {
        if (refused.code === DUPLICATE_KEY) throw error;
        this.giveUp(owners[refused.index], refused.message, error, failures);
        await this.sendOrdered(
          ops.slice(refused.index + 1),
          owners.slice(refused.index + 1),
          failures,
        );
        return;
      }
      if (isTransient(error) || !this.context.connected) throw error;
      // Refused before it reached the server: find the task in halves, keeping the order.
      const tasks = [...new Set(owners)];
      if (tasks.length === 1) {
        this.giveUp(tasks[0], messageOf(error), error, failures);
        return;
      }
      const middle = owners.indexOf(tasks[Math.floor(tasks.length / 2)]);
      await this.sendOrdered(ops.slice(0, middle), owners.slice(0, middle), failures);
      await this.sendOrdered(ops.slice(middle), owners.slice(middle), failures);
    }
  }

  private giveUp(taskId: string, reason: string, cause: unknown, failures: Map<string, Error>) {
    const error = new ArchiveRecordRefusedError(taskId, reason, { cause });
    failures.set(taskId, error);
    this.context.logger.error(`${error.message}; that attempt is not archived`);
  }
}

/** The first write error of a bulk write the server answered, if that is what failed. */
function firstWriteError(
  error: unknown,
): { index: number; code: number | undefined; message: string } | undefined {
  const writeErrors = (error as { writeErrors?: unknown }).writeErrors;
  const first: unknown = Array.isArray(writeErrors) ? writeErrors[0] : writeErrors;
  if (typeof first !== 'object' || first === null) return undefined;
  const { index, code, errmsg } = first as { index?: unknown; code?: unknown; errmsg?: unknown };
  if (typeof index !== 'number') return undefined;
  return {
    index,
    code: typeof code === 'number' ? code : undefined,
    message: typeof errmsg === 'string' ? errmsg : 'refused',
  };
}

/**
 * Whether an error is the server's or the network's (worth trying again), rather than the driver
 * refusing the operation itself (a document it cannot encode, an invalid argument).
 */
function isTransient(error: unknown): boolean {
  return error instanceof mongo.MongoError && !(error instanceof mongo.MongoAPIError);
}
