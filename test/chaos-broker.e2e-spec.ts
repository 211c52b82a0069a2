import type { INestApplicationContext } from '@nestjs/common';
import { setTimeout as delay } from 'node:timers/promises';
import { CogmanClient } from '@cogman/nestjs';
import { startApp } from './support/app';
import {
  ChaosServices,
  CountStreamRuns,
  describeStream,
  runStream,
  streamRuns,
  type IsolatedRabbitMQ,
  type IsolatedRedis,
  type TcpProxy,
} from './support/chaos';
import { uniqueNamespace } from './support/services';
import { waitFor } from './support/wait';

const STREAM = {
  task: 'chaos',
  total: 2000,
  rate: 250,
  inFlight: 50,
  runs: () => streamRuns,
} as const;

describe('Chaos: the broker goes away while tasks stream in (producer and worker running)', () => {
  const chaos = new ChaosServices();
  let broker: IsolatedRabbitMQ;
  let redis: IsolatedRedis;
  let proxy: TcpProxy;
  let app: INestApplicationContext | undefined;

  beforeAll(async () => {
    [broker, redis] = await Promise.all([chaos.rabbitmq(), chaos.redis()]);
    proxy = await chaos.proxy({ port: Number(new URL(broker.uri).port) });
  });

  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  afterAll(() => chaos.stopAll());

  /** An application talking to the broker through the proxy, so the network can be cut. */
  async function start(label: string): Promise<CogmanClient> {
    app = await startApp(
      {
        namespace: uniqueNamespace(label),
        amqpUri: proxy.uriFor(broker.uri),
        redisUri: redis.uri,
        requestTimeout: 2000,
      },
      [CountStreamRuns],
    );
    return app.get(CogmanClient);
  }

  /** Waits until the application is connected again and consuming every queue. */
  const recovered = (client: CogmanClient) =>
    waitFor(
      'the application to reconnect and consume',
      () => {
        const { broker: state, worker } = client.services();
        return (
          state.publisherConnected &&
          state.consumerConnected &&
          worker?.consumers === worker?.queues
        );
      },
      { timeout: 60_000, interval: 100 },
    );

  it('loses nothing when the broker restarts (stop_app / start_app)', async () => {
    const client = await start('chaos-restart');
    const report = await runStream({
      client,
      ...STREAM,
      faults: [
        {
          after: 500,
          name: 'broker restart',
          run: async () => {
            await broker.stopApp();
            await delay(1500);
            await broker.startApp();
            await recovered(client);
          },
        },
      ],
    });
    console.log(describeStream('Broker restart (stop_app, 1.5 s down, start_app):', report));
    expect(report.rejected).toBe(0);
    expect(report.acceptedOffline).toBeGreaterThan(0);
    expect(report.lost).toBe(0);
  });

  it('loses nothing when the network to the broker is cut and restored', async () => {
    const client = await start('chaos-cut');
    const report = await runStream({
      client,
      ...STREAM,
      faults: [
        {
          after: 500,
          name: 'network cut',
          run: async () => {
            proxy.cut({ mode: 'reset' });
            await waitFor(
              'the application to notice',
              () => !client.services().broker.publisherConnected,
            );
            await delay(2000);
            proxy.restore();
            await recovered(client);
          },
        },
      ],
    });
    console.log(
      describeStream('Network cut between the application and the broker (2 s):', report),
    );
    expect(report.rejected).toBe(0);
    expect(report.acceptedOffline).toBeGreaterThan(0);
    expect(report.lost).toBe(0);
  });

  it('loses nothing when the broker is killed (SIGKILL) and started again', async () => {
    const client = await start('chaos-kill');
    const report = await runStream({
      client,
      ...STREAM,
      faults: [
        {
          after: 500,
          name: 'broker killed and restarted',
          run: async () => {
            await broker.kill();
            await broker.start();
            await recovered(client);
          },
        },
      ],
      settle: 90_000,
    });
    console.log(describeStream('Broker killed with SIGKILL, then started again:', report));
    expect(report.rejected).toBe(0);
    expect(report.lost).toBe(0);
  });
});
