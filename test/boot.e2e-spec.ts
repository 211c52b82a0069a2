import { RabbitMQModule, AmqpConnection } from '@golevelup/nestjs-rabbitmq';
import { RedisModule, RedisService } from '@liaoliaots/nestjs-redis';
import { HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { ConsoleLogger, Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  BrokerUnavailableError,
  CogmanClient,
  CogmanHealthIndicator,
  CogmanModule,
  OptionsInvalidError,
  TaskHandler,
  type CogmanModuleOptions,
  type CogmanTaskHandler,
} from '@cogman/nestjs';
import {
  AMQP_URI,
  REDIS_URI,
  cleanUp,
  openAmqp,
  queueNames,
  uniqueNamespace,
} from './support/services';
import { TcpProxy } from './support/chaos';
import { waitFor } from './support/wait';

/** Collects every line any logger writes, at every level. */
class CapturingLogger extends ConsoleLogger {
  readonly lines: string[] = [];
  protected override printMessages(messages: unknown[], context?: string, logLevel?: string): void {
    for (const message of messages) {
      this.lines.push(
        `${logLevel} [${context}] ${message instanceof Error ? message.stack : String(message)}`,
      );
    }
  }
  override error(message: unknown, ...rest: unknown[]): void {
    this.lines.push(`error ${String(message)} ${rest.map(String).join(' ')}`);
  }
}

const done: string[] = [];

@TaskHandler('ping')
class PingHandler implements CogmanTaskHandler {
  handle(payload: string) {
    done.push(payload);
  }
}

async function boot(
  module: new () => unknown,
  logger = new CapturingLogger(),
): Promise<INestApplicationContext> {
  return NestFactory.createApplicationContext(module, { logger, abortOnError: false });
}

describe('Booting Cogman', () => {
  const namespaces: string[] = [];
  afterAll(async () => {
    for (const namespace of namespaces) await cleanUp(namespace, 3, 1);
  });
  const namespace = (label: string) => {
    const name = uniqueNamespace(label);
    namespaces.push(name);
    return name;
  };

  it('takes its options from forRootAsync with imports, inject and useFactory', async () => {
    @Injectable()
    class Settings {
      get(key: string) {
        return { AMQP: AMQP_URI, REDIS: REDIS_URI }[key]!;
      }
    }
    @Module({ providers: [Settings], exports: [Settings] })
    class SettingsModule {}

    const ns = namespace('async');
    @Module({
      imports: [
        CogmanModule.forRootAsync({
          imports: [SettingsModule],
          inject: [Settings],
          useFactory: (settings: Settings): CogmanModuleOptions => ({
            amqpUri: settings.get('AMQP'),
            redisUri: settings.get('REDIS'),
            namespace: ns,
          }),
        }),
      ],
      providers: [PingHandler],
    })
    class AsyncApp {}

    const app = await boot(AsyncApp);
    try {
      const client = app.get(CogmanClient);
      const task = await client.sendTask({ name: 'ping', payload: 'async' });
      await waitFor(
        'the task to succeed',
        async () => (await client.getTask(task.taskId))?.status === 'success',
      );
      expect(done).toContain('async');
      expect(client.services()).toMatchObject({
        broker: { publisherConnected: true, consumerConnected: true },
        redis: { connected: true },
        mongo: null,
        handlers: ['ping'],
        queues: { high: [`${ns}.high_priority_queue_0`], low: [`${ns}.low_priority_queue_0`] },
        worker: { running: true },
      });
    } finally {
      await app.close();
    }
  });

  it.each([
    [
      'forRoot',
      () =>
        CogmanModule.forRoot({ amqpUri: AMQP_URI, redisUri: REDIS_URI, highPriorityQueueCount: 0 }),
    ],
    [
      'forRootAsync',
      () =>
        CogmanModule.forRootAsync({
          useFactory: () => ({ amqpUri: AMQP_URI, redisUri: REDIS_URI, highPriorityQueueCount: 0 }),
        }),
    ],
  ])('fails at boot on an invalid option given to %s, naming it', async (_method, cogman) => {
    @Module({ imports: [cogman()] })
    class BadApp {}
    const booting = boot(BadApp);
    await expect(booting).rejects.toThrow(OptionsInvalidError);
    await expect(booting).rejects.toThrow('Invalid Cogman option "highPriorityQueueCount" (0)');
  });

  it('fails at boot when the broker refuses the credentials, never showing a secret', async () => {
    const logger = new CapturingLogger();
    @Module({
      imports: [
        CogmanModule.forRoot({
          amqpUri: AMQP_URI.replace(/\/\/[^@]*@/, '//guest:amqp-s3cret-value@'),
          redisUri: REDIS_URI.replace('redis://', 'redis://:redis-s3cret-value@'),
          connectionTimeout: 1500,
          namespace: namespace('secret'),
        }),
      ],
    })
    class WrongPasswordApp {}
    let failure: unknown;
    try {
      const app = await boot(WrongPasswordApp, logger);
      await app.close();
    } catch (error) {
      failure = error;
    }
    expect(failure).toBeInstanceOf(BrokerUnavailableError);
    const error = failure as BrokerUnavailableError;
    const everything = [
      error.message,
      String(error.stack),
      String((error.cause as Error)?.message),
      ...logger.lines,
    ].join('\n');
    expect(error.message).toContain('guest:***@');
    expect(everything).not.toContain('s3cret-value');
  });

  it('fails at boot when no broker answers within connectionTimeout', async () => {
    @Module({
      imports: [
        CogmanModule.forRoot({
          amqpUri: 'amqp://127.0.0.1:1',
          redisUri: REDIS_URI,
          connectionTimeout: 500,
        }),
      ],
    })
    class NoBrokerApp {}
    await expect(boot(NoBrokerApp)).rejects.toThrow(
      'Could not connect to RabbitMQ at amqp://127.0.0.1:1: no connection within 500 ms (connectionTimeout)',
    );
  });

  it('runs producer-only with startWorker false: no consumers, tasks spread round robin', async () => {
    const ns = namespace('producer');
    @Module({
      imports: [
        CogmanModule.forRoot({
          amqpUri: AMQP_URI,
          redisUri: REDIS_URI,
          namespace: ns,
          startWorker: false,
          highPriorityQueueCount: 3,
        }),
      ],
      providers: [PingHandler],
    })
    class ProducerApp {}
    const app = await boot(ProducerApp);
    try {
      const client = app.get(CogmanClient);
      for (let i = 0; i < 6; i++)
        await client.sendTask({ name: 'ping', payload: `p${i}`, priority: 'high' });
      expect(client.services().worker).toBeNull();
      const amqp = await openAmqp();
      const channel = await amqp.createChannel();
      for (const queue of queueNames(ns, 3).high) {
        expect(await channel.checkQueue(queue)).toMatchObject({
          messageCount: 2,
          consumerCount: 0,
        });
      }
      await amqp.close();
    } finally {
      await app.close();
    }
  });

  it("works beside the application's own @liaoliaots/nestjs-redis RedisModule", async () => {
    const ns = namespace('redis');
    @Injectable()
    class HostService {
      constructor(readonly redis: RedisService) {}
    }
    @Module({
      imports: [
        RedisModule.forRoot({ config: { url: REDIS_URI } }),
        CogmanModule.forRoot({ amqpUri: AMQP_URI, redisUri: REDIS_URI, namespace: ns }),
      ],
      providers: [PingHandler, HostService],
    })
    class HostApp {}
    const app = await boot(HostApp);
    try {
      // The application's RedisService is its own: its default client, not Cogman's.
      const own = app.get(HostService).redis.getOrThrow();
      await own.set(`test:${ns}:own`, 'mine');
      expect(await own.get(`test:${ns}:own`)).toBe('mine');
      const client = app.get(CogmanClient);
      const task = await client.sendTask({ name: 'ping', payload: 'beside' });
      await waitFor(
        'the task to succeed',
        async () => (await client.getTask(task.taskId))?.status === 'success',
      );
    } finally {
      await app.close();
    }
    // Closing the application closed the application's own client too.
    await waitFor(
      'the application client to close',
      () => app.get(HostService).redis.getOrThrow().status === 'end',
      { timeout: 5000 },
    );
  });

  it("works beside the application's own @golevelup/nestjs-rabbitmq RabbitMQModule", async () => {
    const ns = namespace('golevelup');
    @Injectable()
    class HostService {
      constructor(readonly amqp: AmqpConnection) {}
    }
    @Module({
      imports: [
        RabbitMQModule.forRoot({ uri: AMQP_URI, connectionInitOptions: { wait: true } }),
        CogmanModule.forRoot({ amqpUri: AMQP_URI, redisUri: REDIS_URI, namespace: ns }),
      ],
      providers: [PingHandler, HostService],
    })
    class HostApp {}
    const app = await boot(HostApp);
    try {
      const queue = `${ns}.host-queue`;
      await app.get(HostService).amqp.channel.assertQueue(queue, { autoDelete: true });
      await app.get(HostService).amqp.publish('', queue, { from: 'host' });
      const client = app.get(CogmanClient);
      const task = await client.sendTask({ name: 'ping', payload: 'beside golevelup' });
      await waitFor(
        'the task to succeed',
        async () => (await client.getTask(task.taskId))?.status === 'success',
      );
    } finally {
      await app.close();
    }
  });

  it('reports its health to @nestjs/terminus: up when connected, down naming the part that is not', async () => {
    const ns = namespace('health');
    @Module({
      imports: [
        TerminusModule,
        CogmanModule.forRoot({ amqpUri: AMQP_URI, redisUri: REDIS_URI, namespace: ns }),
      ],
      providers: [PingHandler],
    })
    class HealthyApp {}
    const healthy = await boot(HealthyApp);
    try {
      const indicator = healthy.get(CogmanHealthIndicator);
      await waitFor(
        'Redis to connect',
        async () => (await indicator.isHealthy()).cogman.redis === 'up',
      );
      const report = await healthy
        .get(HealthCheckService)
        .check([() => indicator.isHealthy('cogman')]);
      expect(report).toMatchObject({
        status: 'ok',
        info: { cogman: { status: 'up', broker: 'up', redis: 'up', consumers: 'up' } },
      });
    } finally {
      await healthy.close();
    }

    // Redis goes away after the boot (the boot itself waits for Redis).
    const proxy = await TcpProxy.start({ port: Number(new URL(REDIS_URI).port || 6379) });
    @Module({
      imports: [
        TerminusModule,
        CogmanModule.forRoot({
          amqpUri: AMQP_URI,
          redisUri: proxy.uriFor(REDIS_URI),
          namespace: ns,
        }),
      ],
    })
    class NoRedisApp {}
    const sick = await boot(NoRedisApp);
    try {
      proxy.cut({ mode: 'reset' });
      const indicator = sick.get(CogmanHealthIndicator);
      await waitFor(
        'Redis to be down',
        async () => (await indicator.isHealthy()).cogman.redis === 'down',
      );
      await expect(
        sick.get(HealthCheckService).check([() => indicator.isHealthy('cogman')]),
      ).rejects.toMatchObject({
        response: {
          status: 'error',
          error: {
            cogman: { status: 'down', redis: 'down', broker: 'up', message: 'down: redis' },
          },
        },
      });
    } finally {
      await sick.close();
      await proxy.close();
    }
  });
});
