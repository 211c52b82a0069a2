import { Inject, Injectable, Logger } from '@nestjs/common';
import type { ChannelWrapper } from 'amqp-connection-manager';
import type { Channel, ConsumeMessage } from 'amqplib';
import { setTimeout as delay } from 'node:timers/promises';
import { CONSUMER_CONNECTION } from '../broker/broker.tokens';
import { MAX_PREFETCH, type ResolvedCogmanOptions, RESOLVED_OPTIONS } from '../config';
import { WorkerShutdownError } from '../errors';
import type { TaskPriority } from '../task';
import { within } from '../util/within';
import { TaskAbort } from './task-abort';
import { TaskExecutor, type DeliveryOutcome } from './task.executor';
import type { BrokerConnection } from '../broker/broker-connection';
import { ChannelAcks } from '../broker/channel-acks';
import { TASK_BROKER, type TaskBroker } from '../broker/task-broker';
import { TaskTopology } from '../broker/task-topology';

interface InFlight {
  acks: ChannelAcks;
  queue: string;
  priority: TaskPriority;
  msg: ConsumeMessage;
  abort: TaskAbort;
  /** Holds one of its priority's handler slots (from start until release). */
  running: boolean;
  settled: boolean;
}

/** The handler slots of one priority, and the deliveries read ahead, waiting for one. */
interface Slots {
  readonly limit: number;
  free: number;
  readonly waiting: InFlight[];
}

/** A priority's channel while it is open: where its consumers are (re)started. */
interface LiveChannel {
  ch: Channel;
  acks: ChannelAcks;
}

/** Pause before a delivery that failed for an infrastructure reason is handed back. */
const INFRASTRUCTURE_RETRY_DELAY = 1000;

/**
 * Consumes the task queues with manual acknowledgements. Each priority has its own channel and
 * its own handler slots (its concurrency), so a backlog of low priority tasks never takes a slot
 * from a high priority one. The channel's prefetch (shared by its consumers) is the concurrency
 * times `prefetchMultiplier`: the next deliveries wait in memory, so a slot that frees up starts
 * one at once, and recording a finished task's outcome and acknowledging it does not hold a slot.
 */
@Injectable()
export class TaskConsumer {
  private readonly logger = new Logger('Cogman:Worker');
  private readonly channels: ChannelWrapper[] = [];
  private readonly consumers = new Map<Channel, string[]>();
  private readonly inFlight = new Set<InFlight>();
  /** Hand-backs whose publish has not been confirmed yet (drain waits for them). */
  private readonly handingBack = new Set<Promise<void>>();
  private readonly slots: Record<TaskPriority, Slots>;
  private state: 'idle' | 'running' | 'draining' | 'stopped' = 'idle';
  /** Priorities paused (CogmanClient.pause): not consumed, their queues left as they are. */
  private readonly paused = new Set<TaskPriority>();
  private readonly live = new Map<TaskPriority, LiveChannel>();
  /** Consumer starts and cancels of a priority, one after the other. */
  private readonly toggling = new Map<TaskPriority, Promise<void>>();
  private onIdle?: () => void;

  constructor(
    @Inject(CONSUMER_CONNECTION) private readonly connection: BrokerConnection | null,
    private readonly topology: TaskTopology,
    private readonly executor: TaskExecutor,
    @Inject(TASK_BROKER) private readonly broker: TaskBroker,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedCogmanOptions,
  ) {
    const slots = (limit: number): Slots => ({ limit, free: limit, waiting: [] });
    this.slots = {
      high: slots(options.highPriorityConcurrency),
      low: slots(options.lowPriorityConcurrency),
    };
  }

  get running(): boolean {
    return this.state === 'running';
  }

  /** The priorities this worker does not consume now, because they are paused. */
  get pausedPriorities(): TaskPriority[] {
    return (['high', 'low'] as const).filter((priority) => this.paused.has(priority));
  }

  /**
   * Stops starting tasks of a priority: its consumers are cancelled (the broker keeps its
   * messages), the deliveries read ahead go back to the queue, running handlers finish. Also
   * before `start`: the priority is then not consumed from the start.
   */
  pause(priority: TaskPriority): Promise<void> {
    if (this.paused.has(priority)) return this.toggling.get(priority) ?? Promise.resolve();
    this.paused.add(priority);
    for (const delivery of this.slots[priority].waiting.splice(0)) {
      this.settle(delivery, 'hand-back');
    }
    return this.toggle(priority, async () => {
      const live = this.live.get(priority);
      const tags = live ? this.consumers.get(live.ch) : undefined;
      if (!live || !tags) return;
      await Promise.allSettled(tags.splice(0).map((tag) => live.ch.cancel(tag)));
    });
  }

  /** Consumes a paused priority again. */
  resume(priority: TaskPriority): Promise<void> {
    if (!this.paused.delete(priority)) return this.toggling.get(priority) ?? Promise.resolve();
    return this.toggle(priority, () => this.consume(priority));
  }

  /** Number of queues consumed now (0 while the broker is unreachable). */
  get consumerCount(): number {
    let count = 0;
    for (const tags of this.consumers.values()) count += tags.length;
    return count;
  }

  /** Number of handlers running (or whose outcome is being recorded). */
  get activeCount(): number {
    let waiting = 0;
    for (const slots of Object.values(this.slots)) waiting += slots.waiting.length;
    return this.inFlight.size - waiting;
  }

  /** Deliveries held (received, not yet acknowledged: running or read ahead), per queue. */
  inFlightByQueue(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const { queue } of this.inFlight) counts.set(queue, (counts.get(queue) ?? 0) + 1);
    return counts;
  }

  /** Starts consuming every queue; resolves once the consumers are registered. */
  async start(): Promise<void> {
    if (!this.connection || this.state !== 'idle') return;
    this.state = 'running';
    const channels = [this.open('high'), this.open('low')];
    await Promise.all(channels.map((channel) => channel.waitForConnect()));
  }

  /**
   * Stops taking deliveries, waits up to `shutdownTimeout` for running handlers, then aborts
   * the rest through their signal and hands their messages back for redelivery.
   */
  async drain(): Promise<void> {
    if (this.state !== 'running') return;
    this.state = 'draining';
    await this.cancelConsumers();
    // Read ahead, never started: back to the queue at once (handed back: a new delivery).
    for (const slots of Object.values(this.slots)) {
      for (const delivery of slots.waiting.splice(0)) this.settle(delivery, 'hand-back');
    }
    if (this.inFlight.size > 0) {
      this.logger.log(`Waiting for ${this.inFlight.size} running task(s) to finish`);
      const idle = new Promise<void>((resolve) => (this.onIdle = resolve));
      await within(idle, this.options.shutdownTimeout, () => undefined);
    }
    if (this.inFlight.size > 0) {
      this.logger.warn(
        `Aborting ${this.inFlight.size} task(s) still running after ${this.options.shutdownTimeout} ms; they will be redelivered`,
      );
      for (const delivery of [...this.inFlight]) {
        delivery.abort.abort(new WorkerShutdownError());
        this.settle(delivery, 'hand-back');
      }
    }
    await Promise.allSettled([...this.handingBack]);
    this.state = 'stopped';
  }

  private open(priority: TaskPriority): ChannelWrapper {
    const queues = this.topology.queues(priority);
    // Per consumer (never global: quorum queues and RabbitMQ 4.3 refuse it): the deliveries held
    // for the priority's slots, shared out over its queues.
    const prefetch = Math.min(
      Math.ceil((this.slots[priority].limit * this.options.prefetchMultiplier) / queues.length),
      MAX_PREFETCH,
    );
    const channel = this.connection!.createChannel({
      name: `cogman-consume-${priority}`,
      confirm: false,
      setup: async (ch: Channel) => {
        await this.connection!.ensureQueues((version) =>
          this.topology.declarations(queues, version),
        );
        await ch.prefetch(prefetch, false);
        if (this.state !== 'running') return;
        this.consumers.set(ch, []);
        const acks = new ChannelAcks(ch);
        this.live.set(priority, { ch, acks });
        ch.once('close', () => {
          this.consumers.delete(ch);
          if (this.live.get(priority)?.ch === ch) this.live.delete(priority);
          this.forgetWaiting(priority, acks);
        });
        await this.toggle(priority, () => this.consume(priority));
      },
    });
    this.channels.push(channel);
    return channel;
  }

  /** Starts the consumers of a priority's queues on its channel, unless paused or consumed. */
  private async consume(priority: TaskPriority): Promise<void> {
    const live = this.live.get(priority);
    const tags = live ? this.consumers.get(live.ch) : undefined;
    if (!live || !tags || tags.length > 0 || this.paused.has(priority)) return;
    if (this.state !== 'running') return;
    for (const queue of this.topology.queues(priority)) {
      const { consumerTag } = await live.ch.consume(
        queue,
        (msg) => this.receive(live.acks, queue, priority, msg),
        { noAck: false },
      );
      tags.push(consumerTag);
    }
  }

  /** Runs `step` after the priority's previous start or cancel of its consumers. */
  private toggle(priority: TaskPriority, step: () => Promise<void>): Promise<void> {
    const next = (this.toggling.get(priority) ?? Promise.resolve()).then(step);
    const settled = next.catch(() => {});
    this.toggling.set(priority, settled);
    return next;
  }

  private receive(
    acks: ChannelAcks,
    queue: string,
    priority: TaskPriority,
    msg: ConsumeMessage | null,
  ) {
    if (msg === null) {
      this.logger.warn(`The broker cancelled the consumer of ${queue}`);
      return;
    }
    acks.received(msg);
    const delivery: InFlight = {
      acks,
      queue,
      priority,
      msg,
      abort: new TaskAbort(),
      running: false,
      settled: false,
    };
    this.inFlight.add(delivery);
    const slots = this.slots[priority];
    // Paused: a delivery the broker sent before the consumer's cancel goes back, as a new one.
    if (this.state !== 'running' || this.paused.has(priority)) this.settle(delivery, 'hand-back');
    else if (slots.free > 0) this.begin(delivery);
    else slots.waiting.push(delivery);
  }

  /** Takes a handler slot and runs the delivery. */
  private begin(delivery: InFlight): void {
    this.slots[delivery.priority].free--;
    delivery.running = true;
    void this.run(delivery);
  }

  /** Frees the delivery's handler slot (once) for the next delivery waiting for one. */
  private release(delivery: InFlight): void {
    if (!delivery.running) return;
    delivery.running = false;
    const slots = this.slots[delivery.priority];
    slots.free++;
    const next =
      this.state === 'running' && !this.paused.has(delivery.priority)
        ? slots.waiting.shift()
        : undefined;
    if (next) this.begin(next);
  }

  /** A closed channel's deliveries are redelivered by the broker: those not started are dropped. */
  private forgetWaiting(priority: TaskPriority, acks: ChannelAcks): void {
    const { waiting } = this.slots[priority];
    const kept: InFlight[] = [];
    for (const delivery of waiting) {
      if (delivery.acks !== acks) kept.push(delivery);
      else {
        delivery.settled = true;
        this.inFlight.delete(delivery);
      }
    }
    waiting.splice(0, waiting.length, ...kept);
    if (this.inFlight.size === 0) this.onIdle?.();
  }

  private async run(delivery: InFlight): Promise<void> {
    const { msg, queue, priority, abort } = delivery;
    const release = () => this.release(delivery);
    let outcome: DeliveryOutcome;
    try {
      outcome = await this.executor.execute({ msg, queue, priority, abort, release });
    } catch (error) {
      if (delivery.settled) return;
      this.logger.error(
        `Could not process message ${String(msg.properties.messageId)} from ${queue}; it goes back to the queue`,
        error instanceof Error ? error.stack : String(error),
      );
      // Wait before handing it back, or a broken Redis or broker makes it loop hot.
      await delay(INFRASTRUCTURE_RETRY_DELAY, undefined, { signal: abort.signal }).catch(() => {});
      outcome = 'requeue';
    }
    this.settle(delivery, outcome);
  }

  /**
   * Acks, hands back or requeues once; a closed channel needs none of them (the broker
   * redelivers). A hand-back publishes the message again, then acks it; if that publish fails,
   * the message is requeued instead.
   */
  private settle(delivery: InFlight, outcome: DeliveryOutcome): void {
    if (delivery.settled) return;
    delivery.settled = true;
    this.inFlight.delete(delivery);
    this.release(delivery);
    if (outcome === 'hand-back') {
      const handing = this.handBack(delivery).finally(() => this.handingBack.delete(handing));
      this.handingBack.add(handing);
    } else {
      this.acknowledge(delivery, outcome);
    }
    if (this.inFlight.size === 0) this.onIdle?.();
  }

  /**
   * A message published again as a new delivery, not requeued: a hand-back (at shutdown) is no
   * failure of the task's, so it must not bring it nearer to its delivery limit.
   */
  private async handBack(delivery: InFlight): Promise<void> {
    try {
      await this.broker.handBack(delivery.msg, delivery.queue);
    } catch (error) {
      this.logger.debug?.(`Could not hand a delivery back, requeueing it: ${String(error)}`);
      this.acknowledge(delivery, 'requeue');
      return;
    }
    this.acknowledge(delivery, 'ack');
  }

  private acknowledge(delivery: InFlight, outcome: 'ack' | 'requeue'): void {
    try {
      if (outcome === 'ack') delivery.acks.ack(delivery.msg);
      else delivery.acks.requeue(delivery.msg);
    } catch (error) {
      this.logger.debug?.(`Could not ${outcome} a delivery: ${String(error)}`);
    }
  }

  private async cancelConsumers(): Promise<void> {
    const cancels = [...this.consumers].flatMap(([ch, tags]) => tags.map((tag) => ch.cancel(tag)));
    await Promise.allSettled(cancels);
    this.consumers.clear();
  }
}
