import {
  Controller,
  Module,
  Param,
  Post,
  UseFilters,
  type INestApplicationContext,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  BrokerUnavailableError,
  ClientNotStartedError,
  CogmanClient,
  CogmanErrorFilter,
  CogmanModule,
  StoreUnavailableError,
  TaskHandler,
  type CogmanModuleOptions,
  type CogmanTaskHandler,
} from '@cogman/nestjs';
import { CapturedLogs } from './support/logs';
import { call } from './support/http';
import { AMQP_URI, REDIS_URI, cleanUp, uniqueNamespace } from './support/services';
import { waitFor } from './support/wait';

@TaskHandler('greet')
class GreetHandler implements CogmanTaskHandler {
  handle() {}
}

/** An application's own controller that calls the client (not Cogman's REST API). */
@Controller('mine')
@UseFilters(CogmanErrorFilter)
class MyTasksController {
  constructor(private readonly cogman: CogmanClient) {}

  @Post(':id/retry')
  retry(@Param('id') id: string) {
    return this.cogman.retryTask(id);
  }

  @Post(':id/cancel')
  cancel(@Param('id') id: string) {
    return this.cogman.cancelTask(id);
  }
}

/**
 * What a newcomer meets first: a task sent before the application started Cogman, the REST API
 * asked of an application without HTTP, a worker without shutdown hooks, errors of the client in
 * the application's own controllers, and services that are missing or misconfigured at boot.
 */
describe('First steps', () => {
  const namespaces: string[] = [];
  const apps: INestApplicationContext[] = [];
  const namespace = (label: string) => {
    const name = uniqueNamespace(label);
    namespaces.push(name);
    return name;
  };

  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
  });

  afterAll(async () => {
    for (const ns of namespaces) await cleanUp(ns);
  });

  function moduleOf(
    options: Partial<CogmanModuleOptions> & { startRestServer?: boolean },
    extra: object = {},
  ) {
    @Module({
      imports: [CogmanModule.forRoot({ amqpUri: AMQP_URI, redisUri: REDIS_URI, ...options })],
      ...extra,
    })
    class FirstStepsModule {}
    return FirstStepsModule;
  }

  async function context(module: new () => unknown, logs = new CapturedLogs()) {
    const app = await NestFactory.createApplicationContext(module, { logger: logs });
    apps.push(app);
    return app;
  }

  it('rejects a task sent before app.init() with an error that says so, and sends once started', async () => {
    const logs = new CapturedLogs();
    const app = await NestFactory.create(
      moduleOf({ namespace: namespace('not-started'), requestTimeout: 300 }),
      { logger: logs },
    );
    apps.push(app);
    const client = app.get(CogmanClient);
    const error = await client.sendTask({ name: 'greet' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClientNotStartedError);
    expect((error as Error).message).toContain('app.init()');
    expect(logs.find('warn', 'unreachable')).toEqual([]);

    // Sent while the application starts, a task waits for the start.
    const sending = client.sendTask({ name: 'greet' });
    await app.init();
    expect((await sending).status).toBe('queued');
  });

  it('warns at boot when startRestServer is set in an application without HTTP', async () => {
    const logs = new CapturedLogs();
    await context(moduleOf({ namespace: namespace('no-http'), startRestServer: true }), logs);
    expect(
      logs.find('warn', 'startRestServer is set, but this application has no HTTP server'),
    ).toHaveLength(1);
  });

  it('hints at enableShutdownHooks() in a worker that does not stop on SIGTERM', async () => {
    const logs = new CapturedLogs();
    await context(moduleOf({ namespace: namespace('hooks') }, { providers: [GreetHandler] }), logs);
    await waitFor('the hint', () => logs.find('warn', 'app.enableShutdownHooks()').length === 1);
  });

  it("answers Cogman's errors in the application's own controllers with CogmanErrorFilter", async () => {
    const app = await NestFactory.create(
      moduleOf({ namespace: namespace('filter') }, { controllers: [MyTasksController] }),
      { logger: ['error'] },
    );
    apps.push(app);
    await app.listen(0, '127.0.0.1');
    const { port } = app.getHttpServer().address() as { port: number };
    const origin = `http://127.0.0.1:${port}`;

    const missing = await call(`${origin}/mine/no-such-task/retry`, { method: 'POST' });
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ statusCode: 404, code: 'COGMAN_TASK_NOT_FOUND' });

    const client = app.get(CogmanClient);
    const task = await client.sendTask({ name: 'greet' });
    await client.cancelTask(task.taskId);
    const conflict = await call(`${origin}/mine/${task.taskId}/cancel`, { method: 'POST' });
    expect(conflict.status).toBe(409);
    expect(conflict.body).toMatchObject({ code: 'COGMAN_TASK_STATUS_CONFLICT' });
  });

  it('says from the first attempt that it waits for RabbitMQ, where and for how long', async () => {
    const logs = new CapturedLogs();
    const error = await context(
      moduleOf(
        { amqpUri: 'amqp://guest:s3cret@127.0.0.1:1', connectionTimeout: 2500 },
        { providers: [GreetHandler] },
      ),
      logs,
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BrokerUnavailableError);
    const waiting = logs.find('warn', 'Waiting for RabbitMQ at amqp://guest:***@127.0.0.1:1');
    // Once, though a worker has two connections (the publisher's and the consumer's).
    expect(waiting).toHaveLength(1);
    expect(waiting[0]).toMatch(
      /could not connect \(.*ECONNREFUSED.*\); retrying for up to 2\.\d s \(connectionTimeout\)/,
    );
    expect(logs.find('warn', 'reconnect')).toEqual([]);
    expect(logs.lines.map((line) => line.message).join('\n')).not.toContain('s3cret');
  });

  it('fails the boot at once when the virtual host does not exist', async () => {
    const error = await context(
      moduleOf({ amqpUri: `${AMQP_URI}/no-such-vhost`, connectionTimeout: 600_000 }),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BrokerUnavailableError);
    expect((error as Error).message).toContain(
      'the broker refused to open virtual host "no-such-vhost": it does not exist, or the user may not use it',
    );
  });

  it('waits for Redis at boot and fails it with StoreUnavailableError when Redis never answers', async () => {
    const logs = new CapturedLogs();
    const error = await context(
      moduleOf({ redisUri: 'redis://127.0.0.1:1/0', connectionTimeout: 1500 }),
      logs,
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect((error as Error).message).toMatch(
      /^Redis at redis:\/\/127\.0\.0\.1:1\/0 did not answer at boot within 1500 ms; it may be unreachable \(last error: .*ECONNREFUSED/,
    );
    expect(logs.find('warn', 'Waiting for Redis at redis://127.0.0.1:1/0')).toHaveLength(1);
    // Never connected: nothing was "lost".
    expect(logs.find('error', 'connection lost')).toEqual([]);
  });
});
