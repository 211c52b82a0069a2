import { Module } from '@nestjs/common';
import { CogmanModule } from '@cogman/nestjs';
import { EmailHandler, Mailer, ReportHandler } from './handlers';

@Module({
  imports: [
    CogmanModule.forRootAsync({
      useFactory: () => ({
        amqpUri: process.env.COGMAN_AMQP_URI ?? 'amqp://guest:guest@127.0.0.1:5672',
        redisUri: process.env.COGMAN_REDIS_URI ?? 'redis://127.0.0.1:6379/0',
        mongoUri: process.env.COGMAN_MONGO_URI || undefined,
        namespace: process.env.COGMAN_NAMESPACE ?? 'demo',
        highPriorityQueueCount: 2,
        lowPriorityQueueCount: 2,
        connectionTimeout: 30_000,
      }),
    }),
  ],
  providers: [Mailer, EmailHandler, ReportHandler],
})
export class AppModule {}
