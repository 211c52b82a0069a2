/** Base class of every error Cogman throws; `code` is stable across releases. */
export abstract class CogmanError extends Error {
  abstract readonly code: string;

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}
