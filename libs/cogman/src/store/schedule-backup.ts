import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import type { Connection, mongo } from 'mongoose';
import { RESOLVED_OPTIONS, type ResolvedCogmanOptions } from '../config';
import type { TaskScheduleDefinition } from '../task';
import { within } from '../util/within';
import type { ScheduleSource } from './schedule.store';
import { COGMAN_MONGO_CONNECTION } from './task-archive';

/** A schedule as its MongoDB copy keeps it (field names of the archive's style). */
interface ScheduleDocument {
  _id: string;
  /** The definition as JSON text (its payload and headers may hold any field names). */
  definition: string;
  source: ScheduleSource;
  paused: boolean;
  updated_at: Date;
}

/** A schedule as the copy gives it back. */
export interface BackedUpSchedule {
  definition: TaskScheduleDefinition;
  source: ScheduleSource;
  paused: boolean;
}

/** Mongoose's `connected` ready state (`ConnectionStates.connected`; mongoose is not loaded here). */
const CONNECTED: number = 1;

/**
 * A copy of the recurring schedules in MongoDB (the `schedules` collection of the archive's
 * database), when `mongoUri` is set, so that schedules survive a Redis that lost its data. Each
 * change is copied when it is made, as long as MongoDB answers (else it is copied at the next
 * reconnection to Redis); Redis stays the truth the schedulers work from. Without MongoDB,
 * every call does nothing.
 */
@Injectable()
export class ScheduleBackup {
  private readonly logger = new Logger('Cogman:Scheduler');
  private readonly connection: Connection | null;

  constructor(
    // Typed here, not in the signature, so that Cogman's declarations never name Mongoose's types.
    @Optional() @Inject(COGMAN_MONGO_CONNECTION) connection: unknown,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedCogmanOptions,
  ) {
    this.connection = (connection ?? null) as Connection | null;
  }

  get enabled(): boolean {
    return this.connection !== null;
  }

  async save(schedule: BackedUpSchedule): Promise<void> {
    const document: ScheduleDocument = {
      _id: schedule.definition.id,
      definition: JSON.stringify(schedule.definition),
      source: schedule.source,
      paused: schedule.paused,
      updated_at: new Date(),
    };
    await this.run(`copying schedule ${document._id}`, (collection) =>
      collection.replaceOne({ _id: document._id }, document, { upsert: true }),
    );
  }

  async delete(id: string): Promise<void> {
    await this.run(`removing the copy of schedule ${id}`, (collection) =>
      collection.deleteOne({ _id: id }),
    );
  }

  /** Every schedule copied, or null when MongoDB is not configured or does not answer. */
  async all(): Promise<BackedUpSchedule[] | null> {
    const documents = await this.run('reading the copied schedules', (collection) =>
      collection.find({}).toArray(),
    );
    if (!documents) return null;
    return documents.map((document) => ({
      definition: JSON.parse(document.definition) as TaskScheduleDefinition,
      source: document.source === 'code' ? 'code' : 'api',
      paused: document.paused === true,
    }));
  }

  /** Runs one operation on the collection; logs and gives up (null) when MongoDB cannot. */
  private async run<T>(
    what: string,
    operation: (collection: mongo.Collection<ScheduleDocument>) => Promise<T>,
  ): Promise<T | null> {
    const { connection } = this;
    if (!connection) return null;
    if (Number(connection.readyState) !== CONNECTED || !connection.db) {
      this.logger.warn(`MongoDB is not connected: ${what} waits for the next Redis reconnection`);
      return null;
    }
    const collection = connection.db.collection<ScheduleDocument>('schedules');
    const running = operation(collection);
    try {
      return await within(running, this.options.requestTimeout, () => {
        running.catch(() => {});
        throw new Error(`no answer within ${this.options.requestTimeout} ms`);
      });
    } catch (error) {
      this.logger.warn(`MongoDB failed ${what}: ${String(error)}`);
      return null;
    }
  }
}
