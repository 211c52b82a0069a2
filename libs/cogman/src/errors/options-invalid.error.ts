import { CogmanError } from './cogman.error';

/** A `CogmanModule` option is missing, of the wrong type or out of range. */
export class OptionsInvalidError extends CogmanError {
  readonly code = 'COGMAN_OPTIONS_INVALID';

  constructor(
    readonly option: string,
    readonly value: string,
    readonly reason: string,
  ) {
    super(`Invalid Cogman option "${option}" (${value}): ${reason}`);
  }
}
