import 'reflect-metadata';
import { Logger, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import {
  BrokerUnavailableError,
  CogmanClient,
  StoreUnavailableError,
  type CogmanServices,
  type TaskRecord,
} from '@cogman/nestjs';
import { setTimeout as delay } from 'node:timers/promises';
import { AppModule } from './app.module';
import { showOperations } from './operations';

const EMAILS = 20;
const REPORTS = 20;
const REMINDER_DELAY = 1500;

async function main(): Promise<void> {
  const serve = process.argv.includes('--serve');
  const logger = new Logger('Demo');
  const app = serve
    ? await NestFactory.create(AppModule.register({ serve }), { logger: ['error', 'warn', 'log'] })
    : await NestFactory.createApplicationContext(AppModule.register(), {
        logger: ['error', 'warn', 'log'],
      });
  app.enableShutdownHooks();
  if (serve) await listen(app as INestApplication, logger);
  const cogman = app.get(CogmanClient);

  const started = Date.now();
  const emails = await cogman.sendTasks(
    Array.from({ length: EMAILS }, (_, i) => ({
      name: 'email',
      priority: 'high' as const,
      payload: { to: `user${i}@example.com`, subject: 'Welcome' },
      primaryKey: `user-${i}`,
    })),
  );
  const reports = await cogman.sendTasks(
    Array.from({ length: REPORTS }, (_, i) => ({
      name: 'report',
      retry: 2,
      // Every fifth report fails twice and succeeds on its third attempt, waiting between
      // attempts (exponential backoff from 200 ms); one never succeeds.
      backoff: { type: 'exponential' as const, delay: 200 },
      payload: {
        month: `2026-${String((i % 12) + 1).padStart(2, '0')}`,
        failAttempts: i === 0 ? 9 : i % 5 === 0 ? 2 : 0,
      },
    })),
  );
  const reminder = await cogman.sendTask({
    name: 'email',
    priority: 'high',
    delay: REMINDER_DELAY,
    payload: { to: 'user0@example.com', subject: 'Reminder' },
  });
  logger.log(
    `Sent ${EMAILS} high priority (email), ${REPORTS} low priority (report) tasks, and a reminder email due in ${REMINDER_DELAY} ms (${reminder.status})`,
  );

  const chains = await waitForChains(cogman, [...emails, ...reports, reminder]);
  printSummary(cogman.services(), chains, reminder, Date.now() - started);
  await showOperations(cogman, logger);

  if (serve) {
    keepBusy(cogman, logger);
    logger.log('Serving; press Ctrl+C to stop');
    return;
  }
  await app.close();
}

/**
 * While served, a trickle of tasks of every status for the dashboard to show: emails, reports
 * that fail or run for a while, tasks scheduled for later (one of them cancelled), and a task no
 * worker handles (it goes to the dead-letter queue).
 */
function keepBusy(cogman: CogmanClient, logger: Logger): void {
  let round = 0;
  const tick = async () => {
    round++;
    await cogman.sendTasks(
      Array.from({ length: 3 }, (_, i) => ({
        name: 'email',
        priority: 'high' as const,
        payload: { to: `live${round}-${i}@example.com`, subject: 'Live' },
        primaryKey: `live-${round}-${i}`,
      })),
    );
    await cogman.sendTask({
      name: 'report',
      retry: 1,
      backoff: { type: 'fixed' as const, delay: 3000 },
      payload: {
        month: `live-${round}`,
        failAttempts: round % 3 === 0 ? 2 : round % 2,
        durationMs: round % 2 === 0 ? 8000 : 200,
      },
    });
    const later = await cogman.sendTask({
      name: 'email',
      delay: 10 * 60_000,
      payload: { to: `later${round}@example.com`, subject: 'Later' },
    });
    if (round % 2 === 0) await cogman.cancelTask(later.taskId);
    if (round % 5 === 1) await cogman.sendTask({ name: 'unsubscribe', payload: { user: round } });
  };
  const timer = setInterval(() => {
    tick().catch((error: unknown) => logger.warn(`Demo tasks not sent: ${String(error)}`));
  }, 5000);
  timer.unref();
}

/** Serves the REST API and its OpenAPI description (Swagger UI at /docs), on loopback. */
async function listen(app: INestApplication, logger: Logger): Promise<void> {
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Cogman demo')
      .setDescription("Cogman's REST API: tasks, counts, queues, health and metrics")
      .addApiKey({ type: 'apiKey', in: 'header', name: 'x-api-key' }, 'cogman-api-key')
      .addBearerAuth(undefined, 'cogman-bearer')
      .build(),
  );
  SwaggerModule.setup('docs', app, document);
  const port = Number(process.env.PORT ?? 3000);
  const host = process.env.HOST ?? '127.0.0.1';
  await app.listen(port, host);
  const origin = `http://${host}:${port}`;
  logger.log(
    `Dashboard at ${origin}/cogman/dashboard/; REST API at ${origin}/cogman (try ${origin}/cogman/queues); Swagger UI at ${origin}/docs`,
  );
}

/** Every attempt of each task, once every task has finished (retries are new attempts). */
async function waitForChains(cogman: CogmanClient, sent: TaskRecord[]): Promise<TaskRecord[][]> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const chains = await Promise.all(sent.map((task) => cogman.getAttempts(task.taskId)));
    const done = chains.every((chain) =>
      ['success', 'failed'].includes(chain[chain.length - 1]?.status),
    );
    if (done) return chains;
    if (Date.now() > deadline) throw new Error('The demo tasks did not finish within a minute');
    await delay(100);
  }
}

function printSummary(
  services: CogmanServices,
  chains: TaskRecord[][],
  reminder: TaskRecord,
  elapsed: number,
): void {
  const on = (flag: boolean | null) => (flag === null ? 'n/a' : flag ? 'connected' : 'DOWN');
  const finals = chains.map((chain) => chain[chain.length - 1]);
  const count = (status: string, name: string) =>
    finals.filter((task) => task.status === status && task.name === name).length;
  const retried = chains.find((chain) => chain.length === 3 && chain[2].status === 'success');
  const reminderRun = chains.find((chain) => chain[0].taskId === reminder.taskId)![0];
  const lines = [
    '',
    'Cogman services',
    `  broker    ${services.broker.uri}  publisher ${on(services.broker.publisherConnected)}, consumer ${on(services.broker.consumerConnected)}`,
    `  redis     ${services.redis.uri}  ${on(services.redis.connected)}`,
    `  mongo     ${services.mongo ? `${services.mongo.uri}  ${on(services.mongo.connected)}` : 'off'}`,
    `  queues    high: ${services.queues.high.join(', ')}`,
    `            low:  ${services.queues.low.join(', ')}`,
    `            dead letters: ${services.queues.deadLetter}`,
    `  handlers  ${services.handlers.join(', ')}`,
    `  worker    ${services.worker ? `${services.worker.running ? 'running' : 'stopped'}, concurrency high ${services.worker.highPriorityConcurrency} / low ${services.worker.lowPriorityConcurrency}, prefetch x${services.worker.prefetchMultiplier}` : 'off (producer only)'}`,
    '',
    `Tasks (${elapsed} ms)`,
    `  email   (high)  success ${count('success', 'email')}  failed ${count('failed', 'email')}`,
    `  report  (low)   success ${count('success', 'report')}  failed ${count('failed', 'report')}`,
    `  delayed  the reminder was due ${REMINDER_DELAY} ms after sending; it finished ${reminderRun.updatedAt.getTime() - reminder.createdAt.getTime()} ms after`,
  ];
  if (retried) {
    lines.push(`  retried  report ${retried[0].originalTaskId}:`);
    for (const attempt of retried) {
      const wait = attempt.runAt
        ? ` (waited for ${attempt.runAt.getTime() - attempt.createdAt.getTime()} ms backoff)`
        : '';
      lines.push(
        `           attempt ${attempt.attempt} ${attempt.status}${attempt.failError ? `: ${attempt.failError}` : ''}${wait}`,
      );
    }
  }
  process.stdout.write([...lines, ''].join('\n') + '\n');
}

/** What the demo says when its services are missing: what, how to get them, where to point it. */
function servicesMissing(error: BrokerUnavailableError | StoreUnavailableError): string {
  const what = error instanceof BrokerUnavailableError ? 'RabbitMQ' : 'Redis';
  return [
    '',
    `The demo could not reach ${what}. ${error.message}.`,
    'It needs RabbitMQ and Redis (MongoDB is optional): `npm run demo` starts those installed on',
    'this machine, and `docker compose up -d` runs all three from docker-compose.yml. To use',
    'services elsewhere, set COGMAN_AMQP_URI (default amqp://guest:guest@127.0.0.1:5672) and',
    'COGMAN_REDIS_URI (default redis://127.0.0.1:6379/0); COGMAN_MONGO_URI turns the archive on,',
    'and COGMAN_CONNECTION_TIMEOUT (default 5000 ms) sets how long the demo waits for them.',
    '',
  ].join('\n');
}

main().catch((error: unknown) => {
  if (error instanceof BrokerUnavailableError || error instanceof StoreUnavailableError) {
    process.stderr.write(servicesMissing(error));
  } else {
    console.error(error);
  }
  process.exit(1);
});
