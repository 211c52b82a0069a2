/**
 * `@cogman/nestjs/rest`: the REST API's controller, for an application that refers to it (e.g. to
 * include it in an OpenAPI document of its own). It loads @nestjs/swagger and class-validator;
 * `startRestServer: true` mounts it without this import.
 */
export { CogmanController } from './cogman.controller';
export { CogmanOperationsController } from './cogman-operations.controller';
export { CogmanControlsController } from './cogman-controls.controller';
