/** Whether and where the REST API is mounted. */
export interface RestMount {
  mounted: boolean;
  /** Path prefix, without slashes at either end; null when not mounted. */
  prefix: string | null;
}

/** Path of the REST API when `rest.prefix` is not given. */
export const DEFAULT_REST_PREFIX = 'cogman';

/** Whether and where the REST API is mounted (see `RestMount`). */
export const REST_MOUNT = Symbol('cogman:rest-mount');
/** Instances of the application's guards (`rest.guards`), in order. */
export const REST_APP_GUARDS = Symbol('cogman:rest-app-guards');
