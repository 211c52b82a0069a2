import { TaskHandler, type CogmanTaskHandler, type TaskContext } from '@cogman/nestjs';

/** The task of the demo's recurring schedule: it notes each tick it runs for. */
@TaskHandler('heartbeat')
export class HeartbeatHandler implements CogmanTaskHandler<{ from: string }> {
  readonly beats: string[] = [];

  handle(_payload: { from: string }, ctx: TaskContext): void {
    this.beats.push(ctx.task.primaryKey ?? ctx.task.taskId);
  }
}
