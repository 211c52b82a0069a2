import {
  ConfigurableModuleBuilder,
  type CanActivate,
  type ModuleMetadata,
  type Type,
} from '@nestjs/common';
import type { CogmanModuleOptions } from './config';
import { mountRest } from './rest/rest.mount';

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
}

export const {
  ConfigurableModuleClass: CogmanConfigurableModule,
  MODULE_OPTIONS_TOKEN: COGMAN_MODULE_OPTIONS,
  OPTIONS_TYPE: COGMAN_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: COGMAN_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<CogmanModuleOptions>()
  .setClassMethodName('forRoot')
  .setExtras<CogmanModuleExtras>(
    { isGlobal: true, startRestServer: false, rest: {} },
    (definition, extras) => mountRest({ ...definition, global: extras.isGlobal }, extras),
  )
  .build();
