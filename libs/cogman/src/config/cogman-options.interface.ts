import type { TaskScheduleDefinition } from '../task';
import type { CogmanRedisOption, RedisSource } from './redis-source';

/** Options of `CogmanModule.forRoot`. Durations are in milliseconds. */
export interface CogmanModuleOptions {
  /**
   * RabbitMQ URI, `amqp://` or `amqps://`, or the URIs of a cluster's nodes: Cogman connects to
   * one that answers and moves to another when its node goes. Required.
   */
  amqpUri: string | string[];
  /**
   * Redis URI, `redis://` or `rediss://`; holds the task log. This or `redis` is required (not
   * both).
   */
  redisUri?: string;
  /**
   * Redis, where a URI cannot say it (Sentinel, Cluster, TLS files, an application's client):
   * ioredis options (for Sentinel, `sentinels` and `name`), an ioredis `Redis` client or an
   * ioredis `Cluster`. Cogman connects with a copy of its own (`duplicate()` of a client), with
   * its own settings: commands wait through outages and failovers with no retry limit, no
   * auto-pipelining, its own timeouts, the master only. It closes that copy at shutdown and never
   * touches the client it was given, which stays the application's to close. `keyPrefix` is
   * refused: Cogman names its keys itself (`cogman:{<namespace>}:…`). See the README's
   * Production topology.
   */
  redis?: CogmanRedisOption;
  /** MongoDB URI; when set, every status change is archived there. */
  mongoUri?: string;
  /** How long boot waits for the first broker connection. Default 10 minutes. */
  connectionTimeout?: number;
  /** How long `sendTask` waits for the broker to confirm a message. Default 5 seconds. */
  requestTimeout?: number;
  /**
   * Most bytes of a task's payload, as sent (JSON text or a Buffer); `sendTask` refuses a larger
   * one with `TaskInvalidError`. Default 10 MiB: below RabbitMQ 4's default `max_message_size`
   * (16 MiB) and what one MongoDB document holds (16 MiB, with a Buffer's payload in base64).
   */
  maxPayloadSize?: number;
  /** How long a task record lives in Redis after its last change. Default 7 days. */
  redisTtl?: number;
  /** How long a task document lives in MongoDB. Default 30 days. */
  mongoTtl?: number;
  /**
   * Type of the queues Cogman declares (queues that exist are used as they are): `classic` (the
   * default; one node holds each queue) or `quorum` (replicated over a cluster's nodes: a node's
   * loss loses no task; poison messages are bounded by `deliveryLimit`). See the README's
   * Production topology.
   */
  queueType?: 'classic' | 'quorum';
  /** Number of high priority queues (round robin). Default 1. */
  highPriorityQueueCount?: number;
  /** Number of low priority (lazy) queues (round robin). Default 1. */
  lowPriorityQueueCount?: number;
  /**
   * Key the REST API requires, in an `x-api-key` header or `Authorization: Bearer <key>`
   * (at least 16 characters). Without it, and without `rest.guards`, the API answers only
   * requests from loopback addresses.
   */
  restApiKey?: string;
  /**
   * Collect Prometheus metrics (`CogmanMetrics`, and `GET <prefix>/metrics` with the REST API).
   * Needs the `prom-client` package. Default false.
   */
  metrics?: boolean;
  /** Consume and run tasks in this process. Set false for a producer-only process. Default true. */
  startWorker?: boolean;
  /** High priority handlers running at once in this process. Default 20. */
  highPriorityConcurrency?: number;
  /** Low priority handlers running at once in this process. Default 10. */
  lowPriorityConcurrency?: number;
  /**
   * Deliveries a worker holds per handler slot: RabbitMQ's prefetch is the concurrency times
   * this. Above 1, the next tasks wait in memory, so a handler that finishes starts the next at
   * once, without waiting for its outcome to be recorded and acknowledged or for the broker to
   * send another. A task waiting there is not started before a slot frees (it stays `queued`),
   * goes back to the queue at shutdown, and is redelivered if the worker dies. With long tasks and
   * several workers, 1 spreads a small backlog most evenly. Default 4.
   */
  prefetchMultiplier?: number;
  /** How long shutdown waits for running handlers before aborting them. Default 30 seconds. */
  shutdownTimeout?: number;
  /**
   * How long an attempt may run when neither the task nor its handler says. Default 10 minutes,
   * below RabbitMQ's delivery acknowledgement timeout (`consumer_timeout`, 30 minutes by default):
   * past that the broker closes the channel and redelivers the task.
   */
  taskTimeout?: number;
  /**
   * An attempt still running this long after its handler started is recorded `in_progress` then;
   * a shorter one goes from `queued` to its outcome directly (one change fewer in Redis). Default
   * 1 second.
   */
  progressAfter?: number;
  /**
   * Most times a message of one attempt is delivered: one that keeps crashing or stalling its
   * worker (a poison message) is dead-lettered, reason `delivery_limit`, once it has been
   * delivered this many times. Only redeliveries are counted (in the task's record), so a first
   * delivery costs nothing more. Default 20 (RabbitMQ's default for quorum queues).
   */
  deliveryLimit?: number;
  /**
   * How long a task whose handler this worker lacks is handed back for another worker (published
   * again after a short pause, counted in a header) before it is dead-lettered, reason
   * `unknown_task`. It lets a rolling deploy run a new task name while workers without its handler
   * still consume. 0 dead-letters such a task at once. Default 5 minutes.
   */
  unknownTaskGracePeriod?: number;
  /**
   * Largest handler result recorded with its `success` (bytes of JSON, or of a Buffer): a bigger
   * one is not recorded (nor cut), and the record's `resultError` says so. Default 64 KiB.
   */
  resultMaxSize?: number;
  /**
   * Least time between two progress writes of one attempt (`ctx.progress`): calls in between
   * are folded into the next write, and the last value is always written. Default 1 second.
   */
  progressInterval?: number;
  /** Publish delayed tasks and delayed retries when due, from this process. Default true. */
  startScheduler?: boolean;
  /**
   * Tasks accepted while the broker is unreachable and kept until it returns. Beyond this,
   * `sendTask` rejects with `OfflineBufferFullError`. Default 10000.
   */
  offlineBufferSize?: number;
  /**
   * Prefix of queue names and Redis keys, so that separate services can share a broker.
   * Empty (the default) keeps the queue names of the Go Cogman library.
   */
  namespace?: string;
  /**
   * Status changes kept in memory for the MongoDB archive while it is slow or unreachable; past
   * it, changes are not archived (and counted in a warning) rather than blocking tasks.
   * Default 100000.
   */
  archiveBufferSize?: number;
  /**
   * Recurring tasks declared in code (see `TaskScheduleDefinition`), reconciled at boot with
   * those stored: created, replaced when changed, removed when no longer declared. Default none.
   */
  schedules?: TaskScheduleDefinition[];
}

/** Options after defaults and validation: every field is set. */
export interface ResolvedCogmanOptions extends Required<
  Omit<CogmanModuleOptions, 'amqpUri' | 'redisUri' | 'redis' | 'mongoUri' | 'restApiKey'>
> {
  /** The broker's URIs: one, or a cluster's nodes. */
  amqpUri: readonly string[];
  /** As given; undefined when `redis` was given instead. */
  redisUri: string | undefined;
  /** Where Cogman's Redis client comes from (`redisUri` or `redis`). */
  redis: RedisSource;
  mongoUri: string | undefined;
  restApiKey: string | undefined;
}
