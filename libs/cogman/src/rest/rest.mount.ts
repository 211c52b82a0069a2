import type { CanActivate, DynamicModule, Type } from '@nestjs/common';
import { RouterModule } from '@nestjs/core';
import type { CogmanModuleExtras } from '../cogman.module-definition';
import { OptionsInvalidError } from '../errors';
import { CogmanController } from './cogman.controller';
import { DEFAULT_REST_PREFIX, REST_APP_GUARDS, REST_MOUNT, type RestMount } from './rest.constants';

/**
 * Adds the REST API to Cogman's module definition when `startRestServer` is set: the controller,
 * the application's guards as providers, and a route prefix (RouterModule). Runs when the module
 * is defined, so a bad `rest` option fails there, naming it.
 */
export function mountRest(definition: DynamicModule, extras: CogmanModuleExtras): DynamicModule {
  const { startRestServer, rest } = extras;
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
  const providers = [...(definition.providers ?? [])];
  if (!startRestServer) {
    const mount: RestMount = { mounted: false, prefix: null };
    return { ...definition, providers: [...providers, { provide: REST_MOUNT, useValue: mount }] };
  }
  const prefix = restPrefix(rest.prefix);
  const guards = restGuards(rest.guards);
  const mount: RestMount = { mounted: true, prefix };
  return {
    ...definition,
    imports: [
      ...(definition.imports ?? []),
      ...(rest.imports ?? []),
      RouterModule.register([{ path: prefix, module: definition.module }]),
    ],
    controllers: [...(definition.controllers ?? []), CogmanController],
    providers: [
      ...providers,
      { provide: REST_MOUNT, useValue: mount },
      ...guards,
      {
        provide: REST_APP_GUARDS,
        inject: guards,
        useFactory: (...instances: CanActivate[]) => instances,
      },
    ],
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
