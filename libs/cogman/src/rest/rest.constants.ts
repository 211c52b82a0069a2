/** Instances of the application's guards (`rest.guards`), in order. */
export const REST_APP_GUARDS = Symbol('cogman:rest-app-guards');
