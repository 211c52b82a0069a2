/** Instances of the application's guards (`rest.guards`), in order. */
export const REST_APP_GUARDS = Symbol('cogman:rest-app-guards');

/**
 * The header every request of the dashboard carries: a cross-site form cannot set it, and a
 * read-only dashboard's actions are refused by it.
 */
export const DASHBOARD_HEADER = 'x-cogman-dashboard';

/** Metadata of the dashboard's page and assets: served without the API key (they hold no data). */
export const DASHBOARD_SHELL = 'cogman:dashboard-shell';
