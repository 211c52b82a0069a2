import { redactUri } from '../../config';
import type { ArchiveIndexKeeper } from './archive-indexes.keeper';
import { messageOf, type ArchiveContext } from './archive.context';
import { mongoConnectOptions } from './mongo-connection';

/**
 * Opens the archive's connection in the background and keeps it: a first connection is tried
 * again with backoff for as long as it takes (Mongoose does not retry one), losing and regaining
 * it is logged, and each new connection gets its indexes checked (`prepared`).
 */
export class ArchiveConnector {
  private started = false;
  private preparing?: Promise<void>;
  private resumeOpening?: () => void;

  constructor(
    private readonly context: ArchiveContext,
    private readonly indexes: ArchiveIndexKeeper,
    /** Called once the archive can be written to (after each connection). */
    private readonly onReady: () => void,
  ) {
    const { connection, logger } = context;
    connection.on('disconnected', () => {
      if (context.opened && !context.closed) logger.warn('MongoDB archive connection lost');
    });
    connection.on('reconnected', () => {
      if (context.closed) return;
      logger.log('MongoDB archive connection restored');
      this.onReady();
      void this.prepare();
    });
  }

  /** Starts connecting in the background; boot never waits for MongoDB. */
  start(): void {
    if (this.started || this.context.closed) return;
    this.started = true;
    void this.open();
  }

  /** Stops trying to connect (a pause between attempts ends at once). */
  stop(): void {
    this.resumeOpening?.();
  }

  /** Connects, trying again with backoff for as long as it takes (or until closed). */
  private async open(): Promise<void> {
    const { context } = this;
    const options = mongoConnectOptions(context.uri);
    for (let attempt = 0; !context.closed; attempt++) {
      try {
        await context.connection.openUri(context.uri, options);
        break;
      } catch (error) {
        if (context.closed) return;
        if (attempt === 0) {
          context.logger.warn(
            `MongoDB archive unreachable at ${redactUri(context.uri)} (${messageOf(error)}); ` +
              'tasks keep running, status changes wait in memory for it (archiveBufferSize) and ' +
              'Cogman keeps trying',
          );
        }
        await this.pause(Math.min(15_000, 500 * 2 ** attempt));
      }
    }
    if (context.closed) return;
    context.opened = true;
    context.logger.log(`MongoDB archive connected (${redactUri(context.uri)})`);
    await this.prepare();
    this.onReady();
  }

  /** Once per connection (and again after a reconnection): the write mode and the indexes. */
  private prepare(): Promise<void> {
    this.preparing ??= (async () => {
      try {
        await this.context.traits();
        await this.indexes.ensure();
      } catch (error) {
        if (!this.context.closed) {
          this.context.logger.warn(
            `Could not check the MongoDB archive's indexes (${messageOf(error)}); ` +
              'trying again on the next connection',
          );
        }
      } finally {
        this.preparing = undefined;
      }
    })();
    return this.preparing;
  }

  private pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const resume = () => {
        clearTimeout(timer);
        this.resumeOpening = undefined;
        resolve();
      };
      const timer = setTimeout(resume, ms);
      this.resumeOpening = resume;
    });
  }
}
