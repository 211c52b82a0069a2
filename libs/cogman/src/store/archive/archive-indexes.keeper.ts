import { codeOf, messageOf, type ArchiveContext } from './archive.context';
import { hasTtlIndex, planIndexes, type ExistingIndex } from './task-archive.indexes';
import {
  TASK_INDEXES,
  TASK_LEASES_COLLECTION,
  TASKS_COLLECTION,
  ttlIndex,
  type ArchiveIndex,
} from './task.schema';

const NAMESPACE_NOT_FOUND = 26;
/** The sweep that stands in for a TTL index runs this often, within these bounds (ms). */
const SWEEP_INTERVAL = { min: 1_000, max: 60 * 60 * 1_000 };

/**
 * Keeps the archive's indexes and its expiry: creates the indexes that are missing, changes a TTL
 * index whose lifetime differs from `mongoTtl`, and where the server has no TTL indexes (FerretDB
 * 1.x), deletes expired documents itself, periodically.
 */
export class ArchiveIndexKeeper {
  private ttlUnsupported = false;
  private sweeper?: NodeJS.Timeout;

  constructor(private readonly context: ArchiveContext) {}

  /**
   * Creates the indexes that are missing and changes a TTL index whose lifetime differs from
   * `mongoTtl` (with `collMod`, when the server has it). Nothing is dropped. Without TTL indexes
   * (FerretDB 1.x), a periodic delete of expired documents stands in for them.
   */
  async ensure(): Promise<void> {
    const ttl = ttlIndex(this.context.options.mongoTtl);
    const tasksTtl = await this.ensureCollection(TASKS_COLLECTION, [...TASK_INDEXES, ttl]);
    const leasesTtl = await this.ensureCollection(TASK_LEASES_COLLECTION, [ttl]);
    if (!tasksTtl || !leasesTtl) this.startSweeper();
  }

  stop(): void {
    clearInterval(this.sweeper);
  }

  /** Returns whether the server expires the collection's documents itself (a TTL index). */
  private async ensureCollection(
    collectionName: string,
    desired: ArchiveIndex[],
  ): Promise<boolean> {
    const { logger, options } = this.context;
    const db = this.context.connection.db!;
    const collection = db.collection(collectionName);
    let existing: ExistingIndex[];
    try {
      existing = (await collection.listIndexes().toArray()) as ExistingIndex[];
    } catch (error) {
      if (codeOf(error) !== NAMESPACE_NOT_FOUND) throw error;
      existing = [];
    }
    let expires = hasTtlIndex(existing);
    for (const action of planIndexes(existing, desired)) {
      if (action.kind === 'create') {
        const { key, options: indexOptions } = action.index;
        const isTtl = indexOptions.expireAfterSeconds !== undefined;
        if (isTtl && this.ttlUnsupported) continue;
        try {
          await collection.createIndex(key, indexOptions);
          if (isTtl) expires = true;
        } catch (error) {
          if (isTtl && isUnsupported(error)) {
            this.ttlUnsupported = true;
            logger.warn(
              `This MongoDB-compatible server has no TTL indexes (${messageOf(error)}): Cogman ` +
                `deletes archived tasks older than mongoTtl itself, every ${sweepInterval(options.mongoTtl) / 1000} s`,
            );
          } else {
            logger.warn(
              `Could not create the index "${indexOptions.name}" on ${collectionName}: ${messageOf(error)}`,
            );
          }
        }
      } else if (action.kind === 'retime') {
        try {
          await db.command({
            collMod: collectionName,
            index: { name: action.name, expireAfterSeconds: action.to },
          });
          logger.log(
            `Changed the TTL index "${action.name}" on ${collectionName} from ${action.from} s ` +
              `to ${action.to} s (mongoTtl)`,
          );
        } catch (error) {
          logger.warn(
            `The TTL index "${action.name}" on ${collectionName} removes documents after ` +
              `${action.from} s, but mongoTtl asks for ${action.to} s, and this server cannot ` +
              `change an index in place (collMod: ${messageOf(error)}). Documents keep expiring ` +
              `after ${action.from} s; drop the index to have Cogman create it with mongoTtl.`,
          );
        }
      } else {
        logger.warn(
          `The index "${action.index.options.name}" on ${collectionName} was not created: ` +
            `${action.reason} (existing index "${action.existing.name}")`,
        );
      }
    }
    return expires;
  }

  /** Deletes expired documents periodically, where the server has no TTL index. */
  private startSweeper(): void {
    const { context } = this;
    if (this.sweeper || context.closed) return;
    const sweep = async () => {
      if (!context.connected) return;
      const before = new Date(Date.now() - context.options.mongoTtl);
      try {
        await context.tasks.deleteMany({ created_at: { $lt: before } });
        await context.leases.deleteMany({ created_at: { $lt: before } });
      } catch (error) {
        context.logger.debug?.(`Sweep of expired archived tasks failed: ${messageOf(error)}`);
      }
    };
    this.sweeper = setInterval(() => void sweep(), sweepInterval(context.options.mongoTtl));
    this.sweeper.unref();
    void sweep();
  }
}

function sweepInterval(ttl: number): number {
  return Math.min(SWEEP_INTERVAL.max, Math.max(SWEEP_INTERVAL.min, Math.floor(ttl / 10)));
}

/** A server's way of saying it lacks a command or option (FerretDB: NotImplemented, 238). */
function isUnsupported(error: unknown): boolean {
  const code = codeOf(error);
  return (
    code === 238 ||
    code === 59 ||
    code === 115 ||
    /not (yet )?(implemented|supported)/i.test(messageOf(error))
  );
}
