import { DependencyMissingError } from '../errors';

/**
 * Loads the code of an optional feature (the REST API, the MongoDB archive, metrics) once it is
 * configured, after checking that the packages it needs are installed. Cogman's own entry point
 * loads none of them, so an application that uses none of these features never pays for them.
 */
export function loadOptional<T>(
  feature: string,
  packages: readonly string[],
  load: () => T,
  resolve: (name: string) => unknown = require.resolve,
): T {
  const missing = packages.filter((name) => {
    try {
      resolve(name);
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length > 0) throw new DependencyMissingError(feature, missing);
  return load();
}
