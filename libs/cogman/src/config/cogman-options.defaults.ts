const SECOND = 1000;
const MINUTE = 60 * SECOND;
const DAY = 24 * 60 * MINUTE;
const MiB = 1024 * 1024;

/** Defaults of the Go Cogman library, plus those of the worker and the archive. */
export const COGMAN_DEFAULTS = {
  connectionTimeout: 10 * MINUTE,
  requestTimeout: 5 * SECOND,
  maxPayloadSize: 10 * MiB,
  redisTtl: 7 * DAY,
  mongoTtl: 30 * DAY,
  queueType: 'classic' as 'classic' | 'quorum',
  highPriorityQueueCount: 1,
  lowPriorityQueueCount: 1,
  metrics: false,
  startWorker: true,
  highPriorityConcurrency: 20,
  lowPriorityConcurrency: 10,
  prefetchMultiplier: 4,
  shutdownTimeout: 30 * SECOND,
  taskTimeout: 10 * MINUTE,
  progressAfter: SECOND,
  deliveryLimit: 20,
  unknownTaskGracePeriod: 5 * MINUTE,
  resultMaxSize: 64 * 1024,
  progressInterval: SECOND,
  startScheduler: true,
  offlineBufferSize: 10_000,
  namespace: '',
  archiveBufferSize: 100_000,
} as const;
