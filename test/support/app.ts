import { Logger, Module, type INestApplicationContext, type Provider } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { CogmanModule, type CogmanModuleOptions } from '@cogman/nestjs';
import { AMQP_URI, REDIS_URI } from './services';

/** Boots an application context with Cogman and the given providers (handlers). */
export async function startApp(
  options: Partial<CogmanModuleOptions> & { namespace: string },
  providers: Provider[] = [],
): Promise<INestApplicationContext> {
  @Module({
    imports: [CogmanModule.forRoot({ amqpUri: AMQP_URI, redisUri: REDIS_URI, ...options })],
    providers,
  })
  class TestAppModule {}

  const app = await NestFactory.createApplicationContext(TestAppModule, {
    logger: process.env.COGMAN_TEST_LOGS ? new Logger() : ['error'],
  });
  return app;
}
