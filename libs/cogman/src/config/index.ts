export { COGMAN_DEFAULTS } from './cogman-options.defaults';
export type { CogmanModuleOptions, ResolvedCogmanOptions } from './cogman-options.interface';
export { redactUri } from './redact-uri';
export type { CogmanRedisOption, RedisSource, RedisTopology } from './redis-source';
export { MAX_PREFETCH, MAX_TIMEOUT, resolveCogmanOptions } from './resolve-options';
export { RESOLVED_OPTIONS } from './resolved-options.token';
export {
  DEFAULT_MODULE_EXTRAS,
  DEFAULT_REST_PREFIX,
  MODULE_SHAPE,
  resolveModuleExtras,
} from './module-extras';
export type {
  CogmanDashboardOptions,
  CogmanModuleExtras,
  CogmanModuleShape,
  CogmanRestOptions,
} from './module-extras';
