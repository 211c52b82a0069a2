import type { INestApplicationContext, Provider } from '@nestjs/common';
import { startApp } from './app';
import { cleanUp, uniqueNamespace } from './services';
import { startWorkerProcess, stopWorkerProcess, type WorkerProcess } from './worker-process';

/**
 * What a spec starts — namespaces, applications, worker processes — tracked so that it is all
 * closed, killed and deleted afterwards, even when a test fails. Call `afterEach` and `afterAll`
 * from the spec's hooks of the same names.
 */
export function testHarness() {
  const namespaces: string[] = [];
  const apps: INestApplicationContext[] = [];
  const workers: WorkerProcess[] = [];

  return {
    namespace(label: string): string {
      const name = uniqueNamespace(label);
      namespaces.push(name);
      return name;
    },
    async app(
      options: Parameters<typeof startApp>[0],
      providers: Provider[] = [],
      extra: Parameters<typeof startApp>[2] = {},
    ) {
      const app = await startApp(options, providers, extra);
      apps.push(app);
      return app;
    },
    /** A worker process (test/fixtures/worker.main.ts) in `namespace`. */
    async worker(namespace: string, env: Record<string, string> = {}) {
      const worker = await startWorkerProcess({ COGMAN_NAMESPACE: namespace, ...env });
      workers.push(worker);
      return worker;
    },
    async afterEach(): Promise<void> {
      await Promise.all(workers.splice(0).map((worker) => stopWorkerProcess(worker, 'SIGKILL')));
      await Promise.all(apps.splice(0).map((app) => app.close()));
    },
    async afterAll(): Promise<void> {
      for (const namespace of namespaces.splice(0)) await cleanUp(namespace);
    },
  };
}
