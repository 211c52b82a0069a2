/** Options after defaults and validation (see `resolveCogmanOptions`). */
export const RESOLVED_OPTIONS = Symbol('cogman:resolved-options');
