import {
  ConfigurableModuleBuilder,
  type FactoryProvider,
  type ModuleMetadata,
  type Provider,
  type Type,
} from '@nestjs/common';
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

/**
 * What an options factory returns, checked: a key `CogmanModuleOptions` does not have (a misspelt
 * option, or a setting that shapes the module, such as `startRestServer`, which belongs beside
 * `useFactory`) is typed `never`, so returning it is a compile error naming it.
 */
export type CheckedCogmanOptions<R> = R & {
  [K in Exclude<keyof R, keyof CogmanModuleOptions>]: never;
};

/**
 * What `CogmanModule.forRootAsync` takes: a factory (or class) giving the options, and the
 * module's shape (`isGlobal`, `startRestServer`, `rest`), known when the module is defined.
 */
export interface CogmanModuleAsyncOptions<R extends CogmanModuleOptions = CogmanModuleOptions>
  extends Pick<ModuleMetadata, 'imports'>, Partial<CogmanModuleExtras> {
  /** Gives the options; its arguments are the providers of `inject`. */
  useFactory?: (...args: never[]) => CheckedCogmanOptions<R> | Promise<CheckedCogmanOptions<R>>;
  /** Providers passed to `useFactory`, in order. */
  inject?: FactoryProvider['inject'];
  /** A class whose `createCogmanOptions()` gives the options, instantiated for Cogman. */
  useClass?: Type<CogmanOptionsFactory>;
  /** An existing provider whose `createCogmanOptions()` gives the options. */
  useExisting?: Type<CogmanOptionsFactory>;
  /** Providers `inject` may name, from another module. */
  provideInjectionTokensFrom?: Provider[];
}

/** A class that gives Cogman's options, for `forRootAsync({ useClass })` or `useExisting`. */
export interface CogmanOptionsFactory {
  createCogmanOptions(): CogmanModuleOptions | Promise<CogmanModuleOptions>;
}
