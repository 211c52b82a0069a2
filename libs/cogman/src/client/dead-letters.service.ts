import { Injectable } from '@nestjs/common';
import { DeadLetterQueue, type DeadLetter } from '../broker/dead-letter.queue';
import { TaskNotFoundError, TaskStatusConflictError } from '../errors';
import { CogmanClient } from './cogman.client';

/** Which dead letters an action takes: those of the given keys, or every one (`all`). */
export interface DeadLetterSelection {
  keys?: string[];
  all?: boolean;
  /** Most messages looked at from the head of the queue (bounded by `DEAD_LETTER_BATCH_MAX`). */
  limit: number;
}

/** What a redrive or a discard did. */
export interface DeadLetterActionResult {
  /** Messages taken out of the dead-letter queue. */
  handled: number;
  /** Of those redriven, the tasks retried as a new attempt (their record shows it). */
  retried: number;
  /** Of those redriven, the messages published again as they were to their original queue. */
  requeued: number;
  /** Selected messages left in the queue: no queue to go back to, or a failure. */
  kept: number;
  /** Messages looked at. */
  seen: number;
  /** Messages in the dead-letter queue afterwards (null if the broker could not tell). */
  remaining: number | null;
}

/**
 * Redrive and discard of dead letters. A redriven message of a task whose current attempt has
 * failed (as a dead-lettered task's has) is retried, a new attempt through the path of every
 * attempt, so that its record shows it; any other message goes back to the queue it came from as
 * it was.
 */
@Injectable()
export class DeadLetterService {
  constructor(
    private readonly queue: DeadLetterQueue,
    private readonly client: CogmanClient,
  ) {}

  async list(limit: number): Promise<{ total: number | null; items: DeadLetter[] }> {
    const [total, items] = [await this.queue.size(), await this.queue.peek(limit)];
    return { total, items };
  }

  async redrive(selection: DeadLetterSelection): Promise<DeadLetterActionResult> {
    let retried = 0;
    let requeued = 0;
    let kept = 0;
    const { handled, seen } = await this.queue.drain(selection.limit, async (letter, channel) => {
      if (!selected(selection, letter)) return 'keep';
      try {
        if (letter.taskId && (await this.retried(letter.taskId))) {
          retried++;
          return 'done';
        }
        const target = this.queue.originalQueue(letter);
        if (!target) {
          kept++;
          return 'keep';
        }
        this.queue.republish(channel, letter, target);
        requeued++;
        return 'done';
      } catch {
        kept++;
        return 'keep';
      }
    });
    return { handled, retried, requeued, kept, seen, remaining: await this.queue.size() };
  }

  async discard(selection: DeadLetterSelection): Promise<DeadLetterActionResult> {
    const { handled, seen } = await this.queue.drain(selection.limit, (letter) =>
      Promise.resolve(selected(selection, letter) ? 'done' : 'keep'),
    );
    return {
      handled,
      retried: 0,
      requeued: 0,
      kept: 0,
      seen,
      remaining: await this.queue.size(),
    };
  }

  /** Retries the task if its current attempt has failed; false if it has no such record. */
  private async retried(taskId: string): Promise<boolean> {
    try {
      await this.client.retryTask(taskId);
      return true;
    } catch (error) {
      if (error instanceof TaskStatusConflictError || error instanceof TaskNotFoundError) {
        return false;
      }
      throw error;
    }
  }
}

function selected(selection: DeadLetterSelection, letter: DeadLetter): boolean {
  return selection.all === true || (selection.keys ?? []).includes(letter.key);
}
