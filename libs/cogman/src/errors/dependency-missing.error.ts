import { CogmanError } from './cogman.error';

/** A feature that was configured needs an optional package the application has not installed. */
export class DependencyMissingError extends CogmanError {
  readonly code = 'COGMAN_DEPENDENCY_MISSING';

  constructor(
    readonly feature: string,
    readonly packages: readonly string[],
  ) {
    super(
      `${feature} needs ${packages.join(', ')}, which ${packages.length === 1 ? 'is' : 'are'} not installed: ` +
        `npm install ${packages.join(' ')}`,
    );
  }
}
