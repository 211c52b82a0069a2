import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { CogmanClient, type CogmanServices, type TaskRecord } from '@cogman/nestjs';
import { setTimeout as delay } from 'node:timers/promises';
import { AppModule } from './app.module';

const EMAILS = 20;
const REPORTS = 20;

async function main(): Promise<void> {
  const serve = process.argv.includes('--serve');
  const app = await NestFactory.createApplicationContext(AppModule, {
    logger: ['error', 'warn', 'log'],
  });
  app.enableShutdownHooks();
  const cogman = app.get(CogmanClient);
  const logger = new Logger('Demo');

  const started = Date.now();
  const sent: TaskRecord[] = await Promise.all([
    ...Array.from({ length: EMAILS }, (_, i) =>
      cogman.sendTask({
        name: 'email',
        priority: 'high',
        payload: { to: `user${i}@example.com`, subject: 'Welcome' },
        primaryKey: `user-${i}`,
      }),
    ),
    ...Array.from({ length: REPORTS }, (_, i) =>
      cogman.sendTask({
        name: 'report',
        priority: 'low',
        retry: 2,
        // Every fifth report fails twice and succeeds on its third attempt; one never succeeds.
        payload: {
          month: `2026-${String((i % 12) + 1).padStart(2, '0')}`,
          failAttempts: i === 0 ? 9 : i % 5 === 0 ? 2 : 0,
        },
      }),
    ),
  ]);
  logger.log(`Sent ${EMAILS} high priority (email) and ${REPORTS} low priority (report) tasks`);

  const finals = await waitForChains(cogman, sent);
  printSummary(cogman.services(), finals, Date.now() - started);

  if (serve) {
    logger.log('Serving; press Ctrl+C to stop');
    return;
  }
  await app.close();
}

/** The last attempt of each task, once every task has finished (retries are new attempts). */
async function waitForChains(cogman: CogmanClient, sent: TaskRecord[]): Promise<TaskRecord[]> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const chains = await Promise.all(sent.map((task) => cogman.getAttempts(task.taskId)));
    const finals = chains.map((chain) => chain[chain.length - 1]);
    if (finals.every((task) => task && ['success', 'failed'].includes(task.status))) return finals;
    if (Date.now() > deadline) throw new Error('The demo tasks did not finish within a minute');
    await delay(100);
  }
}

function printSummary(services: CogmanServices, finals: TaskRecord[], elapsed: number): void {
  const on = (flag: boolean | null) => (flag === null ? 'n/a' : flag ? 'connected' : 'DOWN');
  const count = (status: string, name?: string) =>
    finals.filter((task) => task.status === status && (!name || task.name === name)).length;
  const retried = finals.filter((task) => task.attempt > 1);
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
    `  worker    ${services.worker ? `${services.worker.running ? 'running' : 'stopped'}, concurrency high ${services.worker.highPriorityConcurrency} / low ${services.worker.lowPriorityConcurrency}` : 'off (producer only)'}`,
    '',
    `Tasks (${elapsed} ms)`,
    `  email   (high)  success ${count('success', 'email')}  failed ${count('failed', 'email')}`,
    `  report  (low)   success ${count('success', 'report')}  failed ${count('failed', 'report')}`,
    `  retried ${retried.length} task(s); e.g. ${retried[0] ? `${retried[0].name} ${retried[0].originalTaskId} ended ${retried[0].status} on attempt ${retried[0].attempt}${retried[0].failError ? `: ${retried[0].failError}` : ''}` : '-'}`,
    '',
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
