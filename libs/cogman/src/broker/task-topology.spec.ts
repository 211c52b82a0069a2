import { resolveCogmanOptions, type CogmanModuleOptions } from '../config';
import {
  needsQueueMode,
  QUORUM_DELIVERY_LIMIT_FACTOR,
  queueArguments,
  TaskTopology,
  type QueueKind,
} from './task-topology';

/**
 * Only RabbitMQ 3.10 runs on the development machines: these pin what Cogman declares on every
 * broker version it supports (3.10 through 4.3), for each queue type.
 */
const VERSIONS = ['3.10.8', '3.11.28', '3.12.14', '3.13.7', '4.0.9', '4.1.4', '4.2.3', '4.3.0'];
const KINDS: QueueKind[] = ['high', 'low', 'dead-letter'];

const topology = (options: Partial<CogmanModuleOptions> = {}) =>
  new TaskTopology(
    resolveCogmanOptions({
      amqpUri: 'amqp://x',
      redisUri: 'redis://x',
      namespace: 'app',
      ...options,
    }),
  );

describe('queue declarations', () => {
  it('tells the brokers that take x-queue-mode from those that store every classic queue lazily (3.12+)', () => {
    expect(VERSIONS.filter(needsQueueMode)).toEqual(['3.10.8', '3.11.28']);
    // A broker that does not say its version is taken for a current one.
    expect(needsQueueMode(undefined)).toBe(false);
    expect(needsQueueMode('garbage')).toBe(false);
  });

  it("declares classic queues on 3.10 and 3.11 exactly as the Go library does (its fleet's declarations match)", () => {
    for (const serverVersion of ['3.10.8', '3.11.28']) {
      const args = (kind: QueueKind) =>
        queueArguments({
          kind,
          queueType: 'classic',
          serverVersion,
          deliveryLimit: 20,
          deadLetter: 'dlq',
        });
      expect(args('high')).toEqual({ 'x-queue-mode': 'default' });
      expect(args('low')).toEqual({ 'x-queue-mode': 'lazy' });
      expect(args('dead-letter')).toEqual({ 'x-queue-mode': 'lazy' });
    }
  });

  it('never sends x-queue-mode to 3.12 and later (RabbitMQ 4.3 refuses it), and says the type', () => {
    for (const serverVersion of VERSIONS.slice(2)) {
      for (const kind of KINDS) {
        expect(
          queueArguments({
            kind,
            queueType: 'classic',
            serverVersion,
            deliveryLimit: 20,
            deadLetter: 'dlq',
          }),
        ).toEqual({ 'x-queue-type': 'classic' });
      }
    }
  });

  it('declares quorum queues with the dead-letter queue as their target and a delivery limit behind the one Cogman applies, on every version', () => {
    for (const serverVersion of VERSIONS) {
      for (const kind of ['high', 'low'] as const) {
        expect(
          queueArguments({
            kind,
            queueType: 'quorum',
            serverVersion,
            deliveryLimit: 7,
            deadLetter: 'app.dlq',
          }),
        ).toEqual({
          'x-queue-type': 'quorum',
          'x-dead-letter-exchange': '',
          'x-dead-letter-routing-key': 'app.dlq',
          'x-dead-letter-strategy': 'at-least-once',
          'x-overflow': 'reject-publish',
          'x-delivery-limit': 7 * QUORUM_DELIVERY_LIMIT_FACTOR,
        });
      }
      // The dead-letter queue itself is replicated too, and dead-letters nowhere.
      expect(
        queueArguments({
          kind: 'dead-letter',
          queueType: 'quorum',
          serverVersion,
          deliveryLimit: 7,
          deadLetter: 'app.dlq',
        }),
      ).toEqual({ 'x-queue-type': 'quorum' });
    }
  });

  it("names the namespace's queues and declares each with its kind's arguments", () => {
    const quorum = topology({ queueType: 'quorum', highPriorityQueueCount: 2, deliveryLimit: 5 });
    const declared = quorum.declarations(quorum.all(), '4.3.0');
    expect(declared.map((d) => [d.name, d.kind])).toEqual([
      ['app.high_priority_queue_0', 'high'],
      ['app.high_priority_queue_1', 'high'],
      ['app.low_priority_queue_0', 'low'],
      ['app.cogman_dead_letter_queue', 'dead-letter'],
    ]);
    expect(declared[0].arguments).toMatchObject({
      'x-dead-letter-routing-key': 'app.cogman_dead_letter_queue',
      'x-delivery-limit': 5 * QUORUM_DELIVERY_LIMIT_FACTOR,
    });
    const classic = topology();
    expect(classic.declarations(classic.queues('low'), '3.10.8')).toEqual([
      { name: 'app.low_priority_queue_0', kind: 'low', arguments: { 'x-queue-mode': 'lazy' } },
    ]);
  });
});
