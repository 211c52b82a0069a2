import { Module, type DynamicModule } from '@nestjs/common';
import { CogmanModule } from '@cogman/nestjs';
import { EmailHandler, Mailer, ReportHandler } from './handlers';
import { HeartbeatHandler } from './heartbeat.handler';

/**
 * The demo application. With `serve`, Cogman's REST API is mounted under /cogman, and its
 * dashboard at /cogman/dashboard/ (it is then an HTTP application; see main.ts).
 */
@Module({})
export class AppModule {
  static register({ serve = false }: { serve?: boolean } = {}): DynamicModule {
    return {
      module: AppModule,
      imports: [
        CogmanModule.forRootAsync({
          // Known when the module is defined: the controller is mounted before useFactory runs.
          startRestServer: serve,
          startDashboard: serve,
          useFactory: () => ({
            amqpUri: process.env.COGMAN_AMQP_URI ?? 'amqp://guest:guest@127.0.0.1:5672',
            redisUri: process.env.COGMAN_REDIS_URI ?? 'redis://127.0.0.1:6379/0',
            mongoUri: process.env.COGMAN_MONGO_URI || undefined,
            namespace: process.env.COGMAN_NAMESPACE ?? 'demo',
            highPriorityQueueCount: 2,
            lowPriorityQueueCount: 2,
            // A demo that cannot reach its services says so within seconds (see main.ts).
            connectionTimeout: Number(process.env.COGMAN_CONNECTION_TIMEOUT ?? 5000),
            // Prometheus metrics at /cogman/metrics when served.
            metrics: serve,
            // Optional: with a key, the API answers remote clients that send it.
            restApiKey: process.env.COGMAN_REST_API_KEY || undefined,
          }),
        }),
      ],
      providers: [Mailer, EmailHandler, ReportHandler, HeartbeatHandler],
    };
  }
}
