import type { DynamicModule } from '@nestjs/common';
import { MODULE_SHAPE, resolveModuleExtras, type CogmanModuleExtras } from './config';
import { loadOptional } from './util/optional-dependency';

/** Packages the REST API needs beside Cogman's own (optional peer dependencies). */
export const REST_PACKAGES = ['@nestjs/swagger', 'class-validator', 'class-transformer'];

/**
 * Shapes Cogman's module from its extras, when it is defined (before any options factory runs):
 * whether it is global, and whether the REST API is mounted (its code is loaded only then).
 */
export function shapeCogmanModule(
  definition: DynamicModule,
  extras: CogmanModuleExtras,
): DynamicModule {
  const shape = resolveModuleExtras(extras);
  const shaped: DynamicModule = {
    ...definition,
    global: shape.global,
    providers: [...(definition.providers ?? []), { provide: MODULE_SHAPE, useValue: shape }],
  };
  if (!shape.rest.mounted) return shaped;
  const { mountRest } = loadOptional(
    'The REST API (startRestServer)',
    REST_PACKAGES,
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded only when mounted
    () => require('./rest/rest.mount') as typeof import('./rest/rest.mount'),
  );
  const withRest = mountRest(shaped, shape.rest);
  if (!shape.dashboard.mounted) return withRest;
  const { mountDashboard } =
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded only when mounted
    require('./dashboard/dashboard.mount') as typeof import('./dashboard/dashboard.mount');
  return mountDashboard(withRest);
}
