import type { AnyBulkWriteOperation } from 'mongoose';
import { TaskQueryInvalidError } from '../../errors';
import type { TaskEnvelope } from '../../task';
import { TASK_LIST_MAX_LIMIT } from '../task-archive';
import type { ArchiveBulkWriter } from './archive-bulk.writer';
import {
  checkPositiveInteger,
  codeOf,
  DUPLICATE_KEY,
  type ArchiveContext,
} from './archive.context';
import { toTaskEnvelope, type StoredTaskDocument } from './task-archive.query';
import type { TaskDocument } from './task.schema';

/** A lease closer than this to its end is not extended in place but claimed again (ms). */
const LEASE_MARGIN = 1_000;

/**
 * Leases on tasks a producer accepted while the broker was unreachable (re-enqueue): renewing
 * them while their producer holds the tasks, and taking over those whose producer stopped.
 */
export class ArchiveLeases {
  constructor(
    private readonly context: ArchiveContext,
    private readonly writer: ArchiveBulkWriter,
  ) {}

  /**
   * Takes over up to `limit` tasks still `initiated` whose lease has lapsed, oldest first. Only
   * tasks a producer accepted while the broker was unreachable carry a lease; one recorded
   * `initiated` without a lease is its sender's to answer for (it told its caller whether the task
   * was published), so it is never taken. Each claim inserts the lease's next epoch into
   * `task_leases` first: that insert is what makes one claimer win (see TaskLeaseDocument).
   */
  async claimOrphans(owner: string, leaseMs: number, limit: number): Promise<TaskEnvelope[]> {
    checkOwner(owner);
    checkPositiveInteger('leaseMs', leaseMs);
    checkPositiveInteger('limit', limit, TASK_LIST_MAX_LIMIT);
    this.context.assertAvailable();
    const now = new Date();
    const candidates = await this.context.tasks
      .find({ status: { $eq: 'initiated' }, lease_until: { $lt: now } })
      .sort({ created_at: 1, task_id: 1 })
      .limit(limit)
      .lean<StoredTaskDocument[]>();
    const claimed: TaskEnvelope[] = [];
    for (const candidate of candidates) {
      const task = await this.takeLease(candidate, owner, leaseMs);
      if (task && task.status === 'initiated') claimed.push(toTaskEnvelope(task));
    }
    return claimed;
  }

  /**
   * Extends `owner`'s lease on the tasks it still holds `initiated`. A lease that is about to
   * lapse (or has) is claimed again like an orphan, so it stays `owner`'s only if no one else
   * claimed it first.
   */
  async renewLease(owner: string, taskIds: string[], leaseMs: number): Promise<string[]> {
    checkOwner(owner);
    checkPositiveInteger('leaseMs', leaseMs);
    if (!Array.isArray(taskIds) || !taskIds.every((id) => typeof id === 'string' && id !== '')) {
      throw new TaskQueryInvalidError('taskIds', 'must be a list of task ids');
    }
    this.context.assertAvailable();
    const docs = await this.context.readMany(taskIds, {
      status: 1,
      owner: 1,
      lease_until: 1,
      lease_epoch: 1,
    });
    const now = Date.now();
    const until = new Date(now + leaseMs);
    const margin = Math.min(LEASE_MARGIN, leaseMs / 2);
    const owned = new Set<string>();
    const extensions: AnyBulkWriteOperation<TaskDocument>[] = [];
    const extended: string[] = [];
    for (const doc of docs.values()) {
      if (doc.status !== 'initiated' || doc.owner !== owner) continue;
      if (doc.lease_until && doc.lease_until.getTime() > now + margin) {
        extensions.push({
          updateOne: { filter: { _id: doc._id }, update: { $max: { lease_until: until } } },
        });
        extended.push(doc._id);
        owned.add(doc._id);
      } else if ((await this.takeLease(doc, owner, leaseMs))?.status === 'initiated') {
        owned.add(doc._id);
      }
    }
    if (extensions.length > 0) {
      const server = await this.context.traits();
      const refused = await this.writer.bulkWrite(extensions, extended, server.updatesPerChunk);
      for (const id of refused.keys()) owned.delete(id);
    }
    return taskIds.filter((id) => owned.has(id));
  }

  /** Claims the next epoch of a task's lease; the task as it is after the claim, or null. */
  private async takeLease(
    doc: StoredTaskDocument,
    owner: string,
    leaseMs: number,
  ): Promise<StoredTaskDocument | null> {
    const epoch = (doc.lease_epoch ?? 0) + 1;
    try {
      await this.context.leases.create({
        _id: `${doc._id}:${epoch}`,
        task_id: doc._id,
        owner,
        created_at: new Date(),
      });
    } catch (error) {
      if (codeOf(error) === DUPLICATE_KEY) return null;
      throw error;
    }
    return this.context.tasks
      .findOneAndUpdate(
        { _id: doc._id },
        {
          $set: { owner, lease_until: new Date(Date.now() + leaseMs) },
          $max: { lease_epoch: epoch },
        },
        { returnDocument: 'after' },
      )
      .lean<StoredTaskDocument>();
  }
}

function checkOwner(owner: unknown): void {
  if (typeof owner !== 'string' || owner === '') {
    throw new TaskQueryInvalidError('owner', 'must be a non-empty string');
  }
}
