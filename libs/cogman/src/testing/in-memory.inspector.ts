import { Inject, Injectable } from '@nestjs/common';
import { TaskTopology } from '../broker/task-topology';
import { RESOLVED_OPTIONS, type ResolvedCogmanOptions } from '../config';
import type {
  CogmanInspector,
  CogmanQueues,
  CogmanQueueState,
  CogmanServices,
} from '../inspector/cogman.inspector';
import { WORKER_REPORT_INTERVAL } from '../worker/worker-directory';
import { TaskHandlerRegistry } from '../worker/task-handler.registry';
import { InMemoryTaskBroker } from './in-memory-task.broker';
import { QueuePauses } from '../worker/queue-pauses';

/** What `CogmanClient.services()` and `queues()` say in the testing kit: the in-memory state. */
@Injectable()
export class InMemoryInspector implements Pick<CogmanInspector, 'services' | 'queues'> {
  constructor(
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedCogmanOptions,
    private readonly broker: InMemoryTaskBroker,
    private readonly topology: TaskTopology,
    private readonly registry: TaskHandlerRegistry,
    private readonly pauses: QueuePauses,
  ) {}

  queues(): Promise<CogmanQueues> {
    const waiting = new Map<string, number>();
    for (const { queue } of this.broker.peek()) waiting.set(queue, (waiting.get(queue) ?? 0) + 1);
    const { high, low, deadLetter } = this.topology;
    const state = (name: string, kind: CogmanQueueState['kind'], ready: number) => ({
      name,
      kind,
      ready,
      unacked: 0,
      consumers: kind === 'dead-letter' ? 0 : 1,
    });
    return Promise.resolve({
      queues: [
        ...high.map((name) => state(name, 'high', waiting.get(name) ?? 0)),
        ...low.map((name) => state(name, 'low', waiting.get(name) ?? 0)),
        state(deadLetter, 'dead-letter', this.broker.deadLetters.length),
      ],
      workers: 1,
      tasks: this.registry.names().map((name) => ({ name, workers: ['cogman-testing'] })),
      reportInterval: WORKER_REPORT_INTERVAL,
      paused: this.pauses.pausedNow(),
    });
  }

  services(): CogmanServices {
    const { options, topology } = this;
    return {
      broker: { uri: 'memory://cogman-testing', publisherConnected: true, consumerConnected: true },
      redis: { uri: 'memory://cogman-testing', topology: 'standalone', connected: true },
      mongo: null,
      queues: { high: [...topology.high], low: [...topology.low], deadLetter: topology.deadLetter },
      handlers: this.registry.names(),
      paused: this.pauses.pausedNow(),
      offlineTasks: 0,
      pendingRedisWrites: 0,
      worker: {
        running: true,
        consumers: topology.high.length + topology.low.length,
        queues: topology.high.length + topology.low.length,
        consumedQueues: topology.high.length + topology.low.length,
        activeTasks: 0,
        highPriorityConcurrency: options.highPriorityConcurrency,
        lowPriorityConcurrency: options.lowPriorityConcurrency,
        prefetchMultiplier: options.prefetchMultiplier,
      },
    };
  }
}
