import { Injectable } from '@nestjs/common';
import { TaskNotFoundError, TaskStatusConflictError } from '../errors';
import type { TaskListQuery } from '../store/task-archive';
import { CogmanClient } from './cogman.client';

/** Most tasks one bulk action goes through. */
export const BULK_ACTION_MAX = 10_000;
/** Tasks read from the archive per page, and acted on together. */
const BATCH = 100;
/** Actions in flight at once within a batch. */
const PARALLEL = 10;

export type BulkAction = 'retry' | 'cancel';

/** What a bulk action did. */
export interface BulkActionResult {
  /** Tasks it went through. */
  matched: number;
  /** Retried or cancelled. */
  done: number;
  /** Whose status did not allow it (e.g. already retried, already finished). */
  conflicts: number;
  /** Not found, or an error; the first few are listed. */
  failed: number;
  errors: { taskId: string; message: string }[];
  /** Whether it stopped at `max` with more tasks matching. */
  truncated: boolean;
}

/**
 * Retries or cancels many tasks: those given by id, or every task matching a listing's filter
 * (read from the archive a page at a time), in batches of a bounded size.
 */
@Injectable()
export class BulkActionsService {
  constructor(private readonly client: CogmanClient) {}

  async byIds(action: BulkAction, taskIds: string[]): Promise<BulkActionResult> {
    const result = empty();
    for (let i = 0; i < taskIds.length; i += BATCH) {
      await this.apply(action, taskIds.slice(i, i + BATCH), result);
    }
    return result;
  }

  async byFilter(
    action: BulkAction,
    filter: Omit<TaskListQuery, 'limit' | 'cursor'>,
    max: number,
  ): Promise<BulkActionResult> {
    const result = empty();
    let cursor: string | undefined;
    for (;;) {
      const page = await this.client.listTasks({ ...filter, limit: BATCH, cursor });
      const room = max - result.matched;
      await this.apply(
        action,
        page.items.slice(0, room).map((task) => task.taskId),
        result,
      );
      if (page.items.length > room || (page.nextCursor !== null && result.matched >= max)) {
        result.truncated = true;
        break;
      }
      if (page.nextCursor === null) break;
      cursor = page.nextCursor;
    }
    return result;
  }

  private async apply(action: BulkAction, ids: string[], result: BulkActionResult): Promise<void> {
    for (let i = 0; i < ids.length; i += PARALLEL) {
      const chunk = ids.slice(i, i + PARALLEL);
      const outcomes = await Promise.allSettled(
        chunk.map((id) =>
          action === 'retry' ? this.client.retryTask(id) : this.client.cancelTask(id),
        ),
      );
      outcomes.forEach((outcome, index) => {
        result.matched++;
        if (outcome.status === 'fulfilled') {
          result.done++;
        } else if (outcome.reason instanceof TaskStatusConflictError) {
          result.conflicts++;
        } else {
          result.failed++;
          if (result.errors.length < 20) {
            const error = outcome.reason as unknown;
            result.errors.push({
              taskId: chunk[index],
              message:
                error instanceof TaskNotFoundError
                  ? 'no such task'
                  : error instanceof Error
                    ? error.message
                    : String(error),
            });
          }
        }
      });
    }
  }
}

function empty(): BulkActionResult {
  return { matched: 0, done: 0, conflicts: 0, failed: 0, errors: [], truncated: false };
}
