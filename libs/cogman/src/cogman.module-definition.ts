import { ConfigurableModuleBuilder } from '@nestjs/common';
import { DEFAULT_MODULE_EXTRAS, type CogmanModuleExtras, type CogmanModuleOptions } from './config';
import { shapeCogmanModule } from './cogman.module-shape';

export const {
  ConfigurableModuleClass: CogmanConfigurableModule,
  MODULE_OPTIONS_TOKEN: COGMAN_MODULE_OPTIONS,
  OPTIONS_TYPE: COGMAN_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: COGMAN_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<CogmanModuleOptions>({ moduleName: 'Cogman' })
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createCogmanOptions')
  .setExtras<CogmanModuleExtras>(DEFAULT_MODULE_EXTRAS, shapeCogmanModule)
  .build();

/** What `CogmanModule.forRootAsync` takes: a factory (or class) giving the options, and the module's shape. */
export type CogmanModuleAsyncOptions = typeof COGMAN_ASYNC_OPTIONS_TYPE;

/** A class that gives Cogman's options, for `forRootAsync({ useClass })` or `useExisting`. */
export interface CogmanOptionsFactory {
  createCogmanOptions(): CogmanModuleOptions | Promise<CogmanModuleOptions>;
}
