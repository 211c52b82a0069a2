import { CogmanError } from './cogman.error';

/** Some tasks of a `sendTasks` call were not sent; the others were (see `sent`). */
export class TasksNotSentError extends CogmanError {
  readonly code = 'COGMAN_TASKS_NOT_SENT';

  constructor(
    /** Index in the input and the reason, for each task that was not sent. */
    readonly failures: { index: number; error: unknown }[],
    /** The records of the tasks that were sent, by input index (undefined where one failed). */
    readonly sent: unknown[],
  ) {
    const first = failures[0].error;
    super(
      `${failures.length} of ${sent.length} tasks were not sent; the first (index ${failures[0].index}): ${
        first instanceof Error ? first.message : String(first)
      }`,
    );
  }
}
