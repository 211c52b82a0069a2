import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { CogmanModuleOptions } from './config';

/** Options besides those of Cogman itself. */
export interface CogmanModuleExtras {
  /** Make `CogmanClient` and `CogmanWorker` injectable everywhere. Default true. */
  isGlobal: boolean;
}

export const {
  ConfigurableModuleClass: CogmanConfigurableModule,
  MODULE_OPTIONS_TOKEN: COGMAN_MODULE_OPTIONS,
  OPTIONS_TYPE: COGMAN_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: COGMAN_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<CogmanModuleOptions>()
  .setClassMethodName('forRoot')
  .setExtras<CogmanModuleExtras>({ isGlobal: true }, (definition, extras) => ({
    ...definition,
    global: extras.isGlobal,
  }))
  .build();
