export { COGMAN_DEFAULTS } from './cogman-options.defaults';
export type { CogmanModuleOptions, ResolvedCogmanOptions } from './cogman-options.interface';
export { redactUri } from './redact-uri';
export { MAX_PREFETCH, MAX_TIMEOUT, resolveCogmanOptions } from './resolve-options';
