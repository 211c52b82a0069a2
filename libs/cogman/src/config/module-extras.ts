import type { CanActivate, ModuleMetadata, Type } from '@nestjs/common';
import { OptionsInvalidError } from '../errors';
import { didYouMean } from '../util/nearest-name';

/** Where and behind what the REST API is mounted (see `startRestServer`). */
export interface CogmanRestOptions {
  /** Path of the API in the application, e.g. `admin/tasks`. Default `cogman`. */
  prefix?: string;
  /**
   * Guards of the application, run (in order) before every endpoint, beside `restApiKey`. They
   * are providers of Cogman's module: what they inject must be global or in `imports`.
   */
  guards?: Type<CanActivate>[];
  /** Modules that the guards need. */
  imports?: NonNullable<ModuleMetadata['imports']>;
}

/** How the dashboard behaves (see `startDashboard`). */
export interface CogmanDashboardOptions {
  /** Show tasks, queues and workers without any action (retry, cancel, redrive...). Default false. */
  readOnly?: boolean;
}

/**
 * Options besides those of Cogman itself: they shape the module when it is defined, so with
 * `forRootAsync` they sit at the top level, beside `useFactory`.
 */
export interface CogmanModuleExtras {
  /** Make `CogmanClient` and `CogmanWorker` injectable everywhere. Default true. */
  isGlobal: boolean;
  /** Mount `CogmanController` (the REST API) in the application. Default false. */
  startRestServer: boolean;
  /** Prefix and guards of the REST API. */
  rest: CogmanRestOptions;
  /**
   * Serve the dashboard (a web UI) at `/<rest.prefix>/dashboard/`, behind the REST API's access
   * rules. It needs the REST API and turns it on. Default false.
   */
  startDashboard: boolean;
  /** Options of the dashboard. */
  dashboard: CogmanDashboardOptions;
}

/** The extras a module gets when they are not given. */
export const DEFAULT_MODULE_EXTRAS: CogmanModuleExtras = {
  isGlobal: true,
  startRestServer: false,
  rest: {},
  startDashboard: false,
  dashboard: {},
};

/** Path of the REST API when `rest.prefix` is not given. */
export const DEFAULT_REST_PREFIX = 'cogman';

/** The module's shape once its extras are checked (see `resolveModuleExtras`). */
export interface CogmanModuleShape {
  global: boolean;
  rest: {
    mounted: boolean;
    /** Path prefix, without slashes at either end. */
    prefix: string;
    guards: Type<CanActivate>[];
    imports: NonNullable<ModuleMetadata['imports']>;
  };
  dashboard: {
    mounted: boolean;
    readOnly: boolean;
  };
}

/** The module's shape, as the REST API and the lifecycle read it. */
export const MODULE_SHAPE = Symbol('cogman:module-shape');

/** The keys of `CogmanRestOptions`: any other is refused (a typo would otherwise pass unseen). */
const REST_OPTIONS: ReadonlySet<string> = new Set([
  'prefix',
  'guards',
  'imports',
] satisfies (keyof CogmanRestOptions)[]);

/** Checks the extras; a bad one fails where the module is defined, naming it. */
export function resolveModuleExtras(extras: CogmanModuleExtras): CogmanModuleShape {
  const { isGlobal, startRestServer, rest, startDashboard = false, dashboard = {} } = extras;
  if (typeof isGlobal !== 'boolean') {
    throw new OptionsInvalidError('isGlobal', String(isGlobal), 'expected true or false');
  }
  if (typeof startRestServer !== 'boolean') {
    throw new OptionsInvalidError(
      'startRestServer',
      String(startRestServer),
      'expected true or false',
    );
  }
  if (typeof rest !== 'object' || rest === null) {
    throw new OptionsInvalidError('rest', String(rest), 'expected an object');
  }
  if (typeof startDashboard !== 'boolean') {
    throw new OptionsInvalidError(
      'startDashboard',
      String(startDashboard),
      'expected true or false',
    );
  }
  if (typeof dashboard !== 'object' || dashboard === null) {
    throw new OptionsInvalidError('dashboard', String(dashboard), 'expected an object');
  }
  const readOnly = dashboard.readOnly ?? false;
  if (typeof readOnly !== 'boolean') {
    throw new OptionsInvalidError('dashboard.readOnly', String(readOnly), 'expected true or false');
  }
  for (const key of Object.keys(rest)) {
    if (!REST_OPTIONS.has(key)) {
      throw new OptionsInvalidError(
        `rest.${key}`,
        'given',
        `is not a REST option${didYouMean(key, REST_OPTIONS)}`,
      );
    }
  }
  return {
    global: isGlobal,
    dashboard: { mounted: startDashboard, readOnly },
    rest: {
      // The dashboard talks to the REST API alone.
      mounted: startRestServer || startDashboard,
      prefix: restPrefix(rest.prefix),
      guards: restGuards(rest.guards),
      imports: rest.imports ?? [],
    },
  };
}

function restPrefix(value: unknown): string {
  if (value === undefined) return DEFAULT_REST_PREFIX;
  const prefix = typeof value === 'string' ? value.replace(/^\/+|\/+$/g, '') : null;
  const valid =
    prefix !== null &&
    /^[A-Za-z0-9._~-]+(\/[A-Za-z0-9._~-]+)*$/.test(prefix) &&
    !prefix.split('/').some((segment) => /^\.+$/.test(segment));
  if (!valid) {
    throw new OptionsInvalidError(
      'rest.prefix',
      typeof value === 'string' ? JSON.stringify(value) : `a value of type ${typeof value}`,
      'expected a path such as "cogman" or "admin/tasks" (letters, digits, ".", "_", "~", "-", and "/" between segments)',
    );
  }
  return prefix;
}

function restGuards(value: unknown): Type<CanActivate>[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((guard) => typeof guard === 'function')) {
    throw new OptionsInvalidError(
      'rest.guards',
      Array.isArray(value) ? 'an array' : typeof value,
      'expected an array of guard classes (each implementing CanActivate)',
    );
  }
  return value as Type<CanActivate>[];
}
