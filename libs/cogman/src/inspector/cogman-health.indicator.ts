import { Injectable } from '@nestjs/common';
import { CogmanInspector } from './cogman.inspector';

/** One part of Cogman's health, as @nestjs/terminus shows it. */
export interface CogmanHealthStatus {
  status: 'up' | 'down';
  broker: 'up' | 'down';
  redis: 'up' | 'down';
  mongo?: 'up' | 'down';
  consumers?: 'up' | 'down';
  /** Priorities paused in the namespace (not a fault: their queues are not consumed on purpose). */
  paused?: ('high' | 'low')[];
  /** Why it is down, when it is. */
  message?: string;
}

/**
 * A health indicator in the @nestjs/terminus style (no dependency on it): whether the broker,
 * Redis and (when configured) MongoDB are connected, and whether this worker consumes its queues
 * (those of a paused priority excepted: a pause is shown, not counted as down).
 *
 * ```ts
 * this.health.check([() => this.cogmanHealth.isHealthy('cogman')]);
 * ```
 */
@Injectable()
export class CogmanHealthIndicator {
  constructor(private readonly inspector: CogmanInspector) {}

  isHealthy(key = 'cogman'): Promise<Record<string, CogmanHealthStatus>> {
    const services = this.inspector.services();
    const updown = (up: boolean): 'up' | 'down' => (up ? 'up' : 'down');
    const result: CogmanHealthStatus = {
      status: 'up',
      broker: updown(
        services.broker.publisherConnected && services.broker.consumerConnected !== false,
      ),
      redis: updown(services.redis.connected),
    };
    if (services.mongo) result.mongo = updown(services.mongo.connected);
    if (services.worker) {
      result.consumers = updown(
        services.worker.running && services.worker.consumers === services.worker.consumedQueues,
      );
    }
    if (services.paused.length > 0) result.paused = services.paused;
    const down = (['broker', 'redis', 'mongo', 'consumers'] as const).filter(
      (part) => result[part] === 'down',
    );
    if (down.length > 0) {
      result.status = 'down';
      result.message = `down: ${down.join(', ')}`;
    }
    return Promise.resolve({ [key]: result });
  }
}
