import { CogmanError } from './cogman.error';

/** No recurring schedule has this id. */
export class ScheduleNotFoundError extends CogmanError {
  readonly code = 'COGMAN_SCHEDULE_NOT_FOUND';

  constructor(readonly scheduleId: string) {
    super(`Schedule ${scheduleId} was not found`);
  }
}
