import {
  Logger,
  Module,
  type INestApplicationContext,
  type LoggerService,
  type Provider,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { CogmanModule, type CogmanModuleOptions } from '@cogman/nestjs';
import { AMQP_URI, REDIS_URI } from './services';

/**
 * Boots an application context with Cogman and the given providers (handlers); `logger` receives
 * every line (by default only errors are shown, or everything with COGMAN_TEST_LOGS=1).
 */
export async function startApp(
  options: Partial<CogmanModuleOptions> & { namespace: string },
  providers: Provider[] = [],
  { logger }: { logger?: LoggerService } = {},
): Promise<INestApplicationContext> {
  @Module({
    imports: [CogmanModule.forRoot({ amqpUri: AMQP_URI, redisUri: REDIS_URI, ...options })],
    providers,
  })
  class TestAppModule {}

  const app = await NestFactory.createApplicationContext(TestAppModule, {
    logger: logger ?? (process.env.COGMAN_TEST_LOGS ? new Logger() : ['error']),
  });
  return app;
}
