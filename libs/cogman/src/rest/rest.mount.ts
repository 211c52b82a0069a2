import type { CanActivate, DynamicModule } from '@nestjs/common';
import { RouterModule } from '@nestjs/core';
import type { CogmanModuleShape } from '../config';
import { DeadLetterQueue } from '../broker/dead-letter.queue';
import { BulkActionsService } from '../client/bulk-actions.service';
import { DeadLetterService } from '../client/dead-letters.service';
import { CogmanOperationsController } from './cogman-operations.controller';
import { CogmanController } from './cogman.controller';
import { CogmanControlsController } from './cogman-controls.controller';
import { OverviewSnapshot } from './overview.snapshot';
import { REST_APP_GUARDS } from './rest.constants';

/**
 * Adds the REST API to Cogman's module definition: the controller, the application's guards as
 * providers, and a route prefix (RouterModule). Loaded only when `startRestServer` is set, so that
 * an application without it never loads Swagger or class-validator.
 */
export function mountRest(
  definition: DynamicModule,
  rest: CogmanModuleShape['rest'],
): DynamicModule {
  const { prefix, guards } = rest;
  return {
    ...definition,
    imports: [
      ...(definition.imports ?? []),
      ...rest.imports,
      RouterModule.register([{ path: prefix, module: definition.module }]),
    ],
    controllers: [
      ...(definition.controllers ?? []),
      CogmanController,
      CogmanOperationsController,
      CogmanControlsController,
    ],
    providers: [
      ...(definition.providers ?? []),
      OverviewSnapshot,
      DeadLetterQueue,
      DeadLetterService,
      BulkActionsService,
      ...guards,
      {
        provide: REST_APP_GUARDS,
        inject: guards,
        useFactory: (...instances: CanActivate[]) => instances,
      },
    ],
  };
}
