import { OptionsInvalidError, TaskInvalidError } from '../errors';
import { normaliseSchedule, type TaskScheduleDefinition } from '../task';
import { didYouMean } from '../util/nearest-name';
import { COGMAN_DEFAULTS } from './cogman-options.defaults';
import { type CogmanModuleOptions, type ResolvedCogmanOptions } from './cogman-options.interface';
import { redactUri } from './redact-uri';
import { redisSource, type RedisSource } from './redis-source';

const URI_SCHEMES = {
  amqpUri: ['amqp:', 'amqps:'],
  redisUri: ['redis:', 'rediss:'],
  mongoUri: ['mongodb:', 'mongodb+srv:'],
} as const;

const KNOWN_OPTIONS = new Set<string>([
  ...Object.keys(COGMAN_DEFAULTS),
  ...Object.keys(URI_SCHEMES),
  'redis',
  'restApiKey',
  'schedules',
]);

/** Settings that shape the module itself (`CogmanModuleExtras`), never options. */
const MODULE_SHAPING = new Set([
  'isGlobal',
  'startRestServer',
  'rest',
  'startDashboard',
  'dashboard',
]);

/** Shortest API key accepted: guessing one of 16 random characters is out of reach. */
export const MIN_API_KEY_LENGTH = 16;

/** Largest prefetch count RabbitMQ accepts (an unsigned 16-bit integer). */
export const MAX_PREFETCH = 65535;

/** Largest timer delay Node accepts (about 24.8 days); longer timeouts would fire at once. */
export const MAX_TIMEOUT = 2 ** 31 - 1;

/** Applies defaults and validates every option; throws `OptionsInvalidError` naming the first bad one. */
export function resolveCogmanOptions(input: CogmanModuleOptions): ResolvedCogmanOptions {
  if (typeof input !== 'object' || input === null) {
    throw new OptionsInvalidError('options', describe(input), 'expected an options object');
  }
  const raw = input as unknown as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (MODULE_SHAPING.has(key)) {
      throw new OptionsInvalidError(
        key,
        describe(raw[key]),
        `shapes the module when it is defined, before an options factory runs: give it at the top level of forRootAsync({ ${key}: ${typeof raw[key] === 'boolean' ? String(raw[key]) : '…'}, useFactory }), not in what useFactory returns`,
      );
    }
    if (!KNOWN_OPTIONS.has(key)) {
      throw new OptionsInvalidError(
        key,
        describe(raw[key]),
        `is not a Cogman option${didYouMean(key, KNOWN_OPTIONS)}`,
      );
    }
  }
  const pick = <K extends keyof typeof COGMAN_DEFAULTS>(key: K) =>
    raw[key] === undefined ? COGMAN_DEFAULTS[key] : raw[key];

  const redis = redisOption(raw);
  return {
    amqpUri: amqpUris(raw),
    redisUri: redis.kind === 'uri' ? redis.uri : undefined,
    redis,
    mongoUri: uri(raw, 'mongoUri', false),
    connectionTimeout: positiveInteger('connectionTimeout', pick('connectionTimeout'), MAX_TIMEOUT),
    requestTimeout: positiveInteger('requestTimeout', pick('requestTimeout'), MAX_TIMEOUT),
    // RabbitMQ takes messages of up to 512 MiB when its max_message_size is raised that far.
    maxPayloadSize: positiveInteger('maxPayloadSize', pick('maxPayloadSize'), 512 * 1024 * 1024),
    redisTtl: positiveInteger('redisTtl', pick('redisTtl')),
    mongoTtl: positiveInteger('mongoTtl', pick('mongoTtl')),
    queueType: oneOf('queueType', pick('queueType'), ['classic', 'quorum'] as const),
    highPriorityQueueCount: positiveInteger(
      'highPriorityQueueCount',
      pick('highPriorityQueueCount'),
      1000,
    ),
    lowPriorityQueueCount: positiveInteger(
      'lowPriorityQueueCount',
      pick('lowPriorityQueueCount'),
      1000,
    ),
    metrics: boolean('metrics', pick('metrics')),
    startWorker: boolean('startWorker', pick('startWorker')),
    // A worker's prefetch is at least its concurrency.
    highPriorityConcurrency: positiveInteger(
      'highPriorityConcurrency',
      pick('highPriorityConcurrency'),
      MAX_PREFETCH,
    ),
    lowPriorityConcurrency: positiveInteger(
      'lowPriorityConcurrency',
      pick('lowPriorityConcurrency'),
      MAX_PREFETCH,
    ),
    prefetchMultiplier: positiveInteger('prefetchMultiplier', pick('prefetchMultiplier'), 100),
    shutdownTimeout: positiveInteger('shutdownTimeout', pick('shutdownTimeout'), MAX_TIMEOUT),
    taskTimeout: positiveInteger('taskTimeout', pick('taskTimeout'), MAX_TIMEOUT),
    progressAfter: positiveInteger('progressAfter', pick('progressAfter'), MAX_TIMEOUT),
    deliveryLimit: positiveInteger('deliveryLimit', pick('deliveryLimit'), 1000),
    unknownTaskGracePeriod: nonNegativeInteger(
      'unknownTaskGracePeriod',
      pick('unknownTaskGracePeriod'),
      MAX_TIMEOUT,
    ),
    resultMaxSize: positiveInteger('resultMaxSize', pick('resultMaxSize'), 16 * 1024 * 1024),
    progressInterval: positiveInteger('progressInterval', pick('progressInterval'), MAX_TIMEOUT),
    startScheduler: boolean('startScheduler', pick('startScheduler')),
    offlineBufferSize: positiveInteger('offlineBufferSize', pick('offlineBufferSize'), 10_000_000),
    namespace: namespace(pick('namespace')),
    archiveBufferSize: positiveInteger('archiveBufferSize', pick('archiveBufferSize'), 10_000_000),
    restApiKey: apiKey(raw.restApiKey),
    schedules: schedules(raw.schedules),
  };
}

/** Declared schedules, each checked (its problem named `schedules[<i>].<field>`). */
function schedules(value: unknown): TaskScheduleDefinition[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    throw new OptionsInvalidError('schedules', describe(value), 'expected an array of schedules');
  }
  return value.map((item, i) => {
    try {
      return normaliseSchedule(item as TaskScheduleDefinition);
    } catch (error) {
      if (!(error instanceof TaskInvalidError)) throw error;
      throw new OptionsInvalidError(`schedules[${i}].${error.field}`, describe(item), error.reason);
    }
  });
}

function uri(raw: Record<string, unknown>, option: keyof typeof URI_SCHEMES, required: boolean) {
  const value = raw[option];
  if (value === undefined || value === null || value === '') {
    if (!required) return undefined;
    throw new OptionsInvalidError(option, describe(value), 'is required');
  }
  if (typeof value !== 'string') {
    throw new OptionsInvalidError(option, describe(value), 'expected a string');
  }
  const schemes: readonly string[] = URI_SCHEMES[option];
  const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(value)?.[0].toLowerCase();
  if (!scheme || !schemes.includes(scheme) || !value.startsWith(`${scheme}//`)) {
    throw new OptionsInvalidError(
      option,
      describe(value),
      `expected a URI starting with ${schemes.map((s) => `${s}//`).join(' or ')}`,
    );
  }
  // MongoDB URIs may list several hosts, which WHATWG URLs cannot parse.
  const problem = option === 'mongoUri' ? mongoUriProblem(value) : !hasHost(value) && 'host';
  if (problem === 'host') {
    throw new OptionsInvalidError(option, describe(value), 'is not a valid URI with a host');
  }
  if (problem === 'database') {
    throw new OptionsInvalidError(
      option,
      describe(value),
      'names an invalid database (at most 64 characters, none of /\\. "$*<>:|?)',
    );
  }
  return value;
}

/** `redisUri` or `redis`, exactly one of them. */
function redisOption(raw: Record<string, unknown>): RedisSource {
  const given = raw.redis !== undefined && raw.redis !== null;
  if (!given) {
    const value = uri(raw, 'redisUri', false);
    if (value === undefined) {
      throw new OptionsInvalidError(
        'redisUri',
        describe(raw.redisUri),
        'is required, or redis instead: ioredis options (Sentinel: sentinels and name), an ioredis Redis client or an ioredis Cluster',
      );
    }
    return { kind: 'uri', topology: 'standalone', uri: value, description: redactUri(value) };
  }
  if (raw.redisUri !== undefined && raw.redisUri !== null && raw.redisUri !== '') {
    throw new OptionsInvalidError(
      'redis',
      describe(raw.redis),
      'is given with redisUri: give one of them, not both',
    );
  }
  return redisSource(raw.redis);
}

/** One URI or a non-empty list of them, each checked as `uri` checks one. */
function amqpUris(raw: Record<string, unknown>): string[] {
  const value = raw.amqpUri;
  if (!Array.isArray(value)) return [uri(raw, 'amqpUri', true)!];
  if (value.length === 0) {
    throw new OptionsInvalidError('amqpUri', 'an empty array', 'expected at least one URI');
  }
  return value.map((item, i) => {
    try {
      return uri({ amqpUri: item }, 'amqpUri', true)!;
    } catch (error) {
      if (!(error instanceof OptionsInvalidError)) throw error;
      throw new OptionsInvalidError(`amqpUri[${i}]`, describe(item), error.reason);
    }
  });
}

/** What is wrong with a MongoDB URI's hosts or database, which the driver reports only later. */
function mongoUriProblem(value: string): 'host' | 'database' | undefined {
  const match = /^mongodb(?:\+srv)?:\/\/(?:[^@/?]*@)?([^/?]*)(?:\/([^?]*))?/i.exec(value);
  if (!match?.[1]) return 'host';
  let database: string;
  try {
    database = decodeURIComponent(match[2] ?? '');
  } catch {
    return 'database';
  }
  return /[/\\. "$*<>:|?]/.test(database) || database.length > 64 ? 'database' : undefined;
}

function hasHost(value: string): boolean {
  try {
    return new URL(value).hostname !== '';
  } catch {
    return false;
  }
}

function positiveInteger(option: string, value: unknown, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new OptionsInvalidError(option, describe(value), 'expected an integer');
  }
  if (value <= 0 || value > max) {
    throw new OptionsInvalidError(option, describe(value), `expected an integer from 1 to ${max}`);
  }
  return value;
}

function nonNegativeInteger(option: string, value: unknown, max: number): number {
  if (value === 0) return 0;
  try {
    return positiveInteger(option, value, max);
  } catch (error) {
    if (!(error instanceof OptionsInvalidError) || typeof value !== 'number') throw error;
    throw new OptionsInvalidError(option, describe(value), `expected an integer from 0 to ${max}`);
  }
}

function oneOf<T extends string>(option: string, value: unknown, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) {
    throw new OptionsInvalidError(
      option,
      describe(value),
      `expected ${allowed.map((v) => JSON.stringify(v)).join(' or ')}`,
    );
  }
  return value as T;
}

function boolean(option: string, value: unknown): boolean {
  if (typeof value !== 'boolean') {
    throw new OptionsInvalidError(option, describe(value), 'expected true or false');
  }
  return value;
}

function namespace(value: unknown): string {
  if (typeof value !== 'string' || !/^[A-Za-z0-9_-]{0,64}$/.test(value)) {
    throw new OptionsInvalidError(
      'namespace',
      describe(value),
      'expected up to 64 letters, digits, "_" or "-"',
    );
  }
  return value;
}

/** A key of printable ASCII without spaces; errors never show it. */
function apiKey(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  const shown =
    typeof value === 'string' ? `a string of ${value.length} characters` : describe(value);
  if (
    typeof value !== 'string' ||
    value.length < MIN_API_KEY_LENGTH ||
    value.length > 512 ||
    !/^[\x21-\x7e]+$/.test(value)
  ) {
    throw new OptionsInvalidError(
      'restApiKey',
      shown,
      `expected ${MIN_API_KEY_LENGTH} to 512 printable ASCII characters without spaces`,
    );
  }
  return value;
}

/** A printable form of an option value; URIs lose their password. */
function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(redactUri(value));
  if (value === undefined) return 'undefined';
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) {
    return String(value);
  }
  return `a value of type ${Array.isArray(value) ? 'array' : typeof value}`;
}
