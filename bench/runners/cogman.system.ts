import type { INestApplicationContext } from '@nestjs/common';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import type { RunConfig, RunResult } from '../support/config';
import { AMQP_URI, MONGO_URI, REDIS_URI } from '../support/services';
import {
  type CompletionTracker,
  payloadMaker,
  TASK_NAME,
  until,
  type BenchPayload,
  type BenchSystem,
} from './load';

type CogmanLibrary = typeof import('../../libs/cogman/src');
type NestCommon = typeof import('@nestjs/common');
type NestCore = typeof import('@nestjs/core');

/** This repository's library; `--lib` points the benchmark at another copy (another branch). */
export const DEFAULT_LIB = join(__dirname, '..', '..', 'libs', 'cogman', 'src');

/**
 * Cogman as an application uses it: `CogmanModule.forRoot` with the Redis log (always on), the
 * Mongo archive for `cogman-mongo`, a no-op `@TaskHandler`, `sendTask` / `sendTasks`. A task
 * counts as finished once its handler has run and the worker has nothing in flight, that is
 * after its `success` record and its ack.
 */
export function cogmanSystem(config: RunConfig, tracker: CompletionTracker): BenchSystem {
  const role = config.role ?? 'both';
  const libPath = config.lib ? resolve(config.lib) : DEFAULT_LIB;
  // Nest must be the copy the library resolves, or its decorators and discovery do not meet.
  const load = createRequire(join(libPath, 'index.ts'));
  const lib = load(libPath) as CogmanLibrary;
  const { Module } = load('@nestjs/common') as NestCommon;
  const { NestFactory } = load('@nestjs/core') as NestCore;
  const payload = payloadMaker(config.payloadBytes);
  const notes: RunResult['notes'] = {};
  let app: INestApplicationContext | undefined;
  let client: InstanceType<CogmanLibrary['CogmanClient']>;
  let worker: InstanceType<CogmanLibrary['CogmanWorker']>;

  class NoopHandler {
    handle(task: BenchPayload): void {
      tracker.complete(task.i);
    }
  }
  lib.TaskHandler(TASK_NAME)(NoopHandler);

  class BenchModule {}
  Module({
    imports: [
      lib.CogmanModule.forRoot({
        amqpUri: AMQP_URI,
        redisUri: REDIS_URI,
        mongoUri: config.system === 'cogman-mongo' ? `${MONGO_URI}/${config.name}` : undefined,
        namespace: config.name,
        startWorker: role !== 'producer',
        highPriorityConcurrency: config.concurrency,
        lowPriorityConcurrency: config.concurrency,
        ...(config.prefetchMultiplier ? { prefetchMultiplier: config.prefetchMultiplier } : {}),
      }),
    ],
    providers: role === 'producer' ? [] : [NoopHandler],
  })(BenchModule);

  const mongoStatus = () => {
    const mongo = client.services().mongo;
    return mongo === null ? 'not configured' : mongo.connected ? 'connected' : 'not connected';
  };
  const task = (index: number) => ({
    name: TASK_NAME,
    payload: payload(index),
    priority: config.priority,
  });

  return {
    async start() {
      app = await NestFactory.createApplicationContext(BenchModule, { logger: ['error', 'warn'] });
      client = app.get(lib.CogmanClient);
      worker = app.get(lib.CogmanWorker);
      notes.mongoAtStart = mongoStatus();
    },
    async send(index) {
      await client.sendTask(task(index));
    },
    async sendBulk(indexes) {
      await client.sendTasks(indexes.map(task));
    },
    async drained() {
      if (role !== 'producer') {
        await tracker.done;
        // The handler ran for every task; each finishes with its record and its ack.
        await until(() => worker.activeCount === 0);
      }
      const finished = performance.now();
      notes.mongo = mongoStatus();
      return finished;
    },
    async stop() {
      await app?.close();
    },
    notes: () => notes,
  };
}
