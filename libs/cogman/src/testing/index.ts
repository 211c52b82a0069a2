/**
 * `@cogman/nestjs/testing`: Cogman without RabbitMQ or Redis, for an application's unit tests.
 */
export { CogmanTestingModule } from './cogman-testing.module';
export type { CogmanTestingOptions } from './cogman-testing.module';
export { CogmanTesting } from './cogman.testing';
export type { DeadLetteredTask, SentTask } from './cogman.testing';
