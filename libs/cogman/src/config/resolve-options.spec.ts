import { Cluster, Redis } from 'ioredis';
import { OptionsInvalidError } from '../errors';
import { DEFAULT_MODULE_EXTRAS, resolveModuleExtras } from './module-extras';
import { COGMAN_DEFAULTS } from './cogman-options.defaults';
import type { CogmanModuleOptions } from './cogman-options.interface';
import { redactUri } from './redact-uri';
import { resolveCogmanOptions } from './resolve-options';

const base: CogmanModuleOptions = {
  amqpUri: 'amqp://localhost:5672',
  redisUri: 'redis://localhost:6379/0',
};

function errorOf(options: unknown): OptionsInvalidError {
  try {
    resolveCogmanOptions(options as CogmanModuleOptions);
  } catch (error) {
    expect(error).toBeInstanceOf(OptionsInvalidError);
    return error as OptionsInvalidError;
  }
  throw new Error('expected the options to be rejected');
}

describe('resolveCogmanOptions', () => {
  it('applies the Go library defaults (in milliseconds) and the worker defaults', () => {
    expect(resolveCogmanOptions(base)).toEqual({
      ...base,
      amqpUri: [base.amqpUri],
      redis: {
        kind: 'uri',
        topology: 'standalone',
        uri: base.redisUri,
        description: base.redisUri,
      },
      mongoUri: undefined,
      schedules: [],
      connectionTimeout: 600_000,
      requestTimeout: 5_000,
      maxPayloadSize: 10_485_760,
      redisTtl: 604_800_000,
      mongoTtl: 2_592_000_000,
      queueType: 'classic',
      highPriorityQueueCount: 1,
      lowPriorityQueueCount: 1,
      metrics: false,
      startWorker: true,
      highPriorityConcurrency: 20,
      lowPriorityConcurrency: 10,
      prefetchMultiplier: 4,
      shutdownTimeout: 30_000,
      taskTimeout: 600_000,
      progressAfter: 1000,
      deliveryLimit: 20,
      unknownTaskGracePeriod: 300_000,
      resultMaxSize: 65536,
      progressInterval: 1000,
      startScheduler: true,
      offlineBufferSize: 10_000,
      namespace: '',
      archiveBufferSize: 100_000,
      restApiKey: undefined,
    });
    expect(Object.keys(COGMAN_DEFAULTS).length).toBe(24);
  });

  it("takes a cluster's node URIs as a list", () => {
    const uris = ['amqp://a:5672', 'amqps://user:secret@b:5671/vhost'];
    expect(resolveCogmanOptions({ ...base, amqpUri: uris }).amqpUri).toEqual(uris);
  });

  it('keeps the values given', () => {
    const options = resolveCogmanOptions({
      ...base,
      mongoUri: 'mongodb://a:27017,b:27017/cogman?replicaSet=rs0',
      highPriorityQueueCount: 2,
      lowPriorityQueueCount: 4,
      metrics: true,
      startWorker: false,
      namespace: 'billing',
      requestTimeout: 1000,
      archiveBufferSize: 500,
      unknownTaskGracePeriod: 0,
    });
    expect(options).toMatchObject({
      archiveBufferSize: 500,
      unknownTaskGracePeriod: 0,
      mongoUri: 'mongodb://a:27017,b:27017/cogman?replicaSet=rs0',
      highPriorityQueueCount: 2,
      lowPriorityQueueCount: 4,
      metrics: true,
      startWorker: false,
      namespace: 'billing',
      requestTimeout: 1000,
    });
  });

  it.each([
    ['amqpUri', { redisUri: base.redisUri }, 'is required'],
    ['redisUri', { amqpUri: base.amqpUri }, 'is required, or redis instead'],
    ['redisUri', { amqpUri: base.amqpUri, redisUri: '' }, 'is required, or redis instead'],
    ['redis', { ...base, redis: { host: 'a' } }, 'is given with redisUri: give one of them'],
    ['redis', { amqpUri: base.amqpUri, redis: 'redis://a' }, 'expected ioredis options'],
    ['redis', { amqpUri: base.amqpUri, redis: [] }, 'expected ioredis options'],
    ['redis.keyPrefix', { amqpUri: base.amqpUri, redis: { keyPrefix: 'app:' } }, 'hash tag'],
    ['redis.sentinels', { amqpUri: base.amqpUri, redis: { sentinels: [] } }, 'non-empty array'],
    [
      'redis.name',
      { amqpUri: base.amqpUri, redis: { sentinels: [{ host: 'a', port: 26379 }] } },
      'is required with sentinels',
    ],
    ['amqpUri', { ...base, amqpUri: '' }, 'is required'],
    ['amqpUri', { ...base, amqpUri: 42 }, 'expected a string'],
    ['amqpUri', { ...base, amqpUri: 'http://localhost' }, 'amqp://'],
    ['amqpUri', { ...base, amqpUri: 'not a uri' }, 'amqp://'],
    ['amqpUri', { ...base, amqpUri: 'amqp://' }, 'with a host'],
    ['amqpUri', { ...base, amqpUri: [] }, 'at least one URI'],
    ['amqpUri[1]', { ...base, amqpUri: ['amqp://a', 'http://b'] }, 'amqp://'],
    ['redisUri', { ...base, redisUri: 'amqp://localhost' }, 'redis://'],
    ['mongoUri', { ...base, mongoUri: 'postgres://localhost' }, 'mongodb://'],
    ['mongoUri', { ...base, mongoUri: 'mongodb:///cogman' }, 'with a host'],
    ['mongoUri', { ...base, mongoUri: 'mongodb://localhost//cogman' }, 'invalid database'],
    ['mongoUri', { ...base, mongoUri: 'mongodb://localhost/my.db' }, 'invalid database'],
    ['connectionTimeout', { ...base, connectionTimeout: 0 }, 'from 1 to'],
    ['requestTimeout', { ...base, requestTimeout: -5 }, 'from 1 to'],
    ['requestTimeout', { ...base, requestTimeout: '5000' }, 'expected an integer'],
    ['redisTtl', { ...base, redisTtl: 1.5 }, 'expected an integer'],
    ['mongoTtl', { ...base, mongoTtl: NaN }, 'expected an integer'],
    ['highPriorityQueueCount', { ...base, highPriorityQueueCount: 0 }, 'from 1 to'],
    ['lowPriorityQueueCount', { ...base, lowPriorityQueueCount: -1 }, 'from 1 to'],
    ['highPriorityConcurrency', { ...base, highPriorityConcurrency: 70_000 }, 'from 1 to 65535'],
    ['lowPriorityConcurrency', { ...base, lowPriorityConcurrency: 0 }, 'from 1 to'],
    ['prefetchMultiplier', { ...base, prefetchMultiplier: 0 }, 'from 1 to 100'],
    ['prefetchMultiplier', { ...base, prefetchMultiplier: 2.5 }, 'expected an integer'],
    ['shutdownTimeout', { ...base, shutdownTimeout: 2 ** 40 }, 'from 1 to'],
    ['metrics', { ...base, metrics: 'yes' }, 'true or false'],
    ['queueType', { ...base, queueType: 'stream' }, 'expected "classic" or "quorum"'],
    ['startRestServer', { ...base, startRestServer: true }, 'at the top level of forRootAsync'],
    ['rest', { ...base, rest: { prefix: 'x' } }, 'shapes the module when it is defined'],
    ['startDashboard', { ...base, startDashboard: true }, 'at the top level of forRootAsync'],
    ['dashboard', { ...base, dashboard: { readOnly: true } }, 'shapes the module'],
    ['isGlobal', { ...base, isGlobal: false }, 'not in what useFactory returns'],
    ['startWorker', { ...base, startWorker: 1 }, 'true or false'],
    ['startScheduler', { ...base, startScheduler: null }, 'true or false'],
    ['taskTimeout', { ...base, taskTimeout: 0 }, 'from 1 to'],
    ['progressAfter', { ...base, progressAfter: 0 }, 'from 1 to'],
    ['deliveryLimit', { ...base, deliveryLimit: 1001 }, 'from 1 to 1000'],
    ['unknownTaskGracePeriod', { ...base, unknownTaskGracePeriod: -1 }, 'from 0 to'],
    ['unknownTaskGracePeriod', { ...base, unknownTaskGracePeriod: 0.5 }, 'expected an integer'],
    ['resultMaxSize', { ...base, resultMaxSize: 0 }, 'from 1 to 16777216'],
    ['progressInterval', { ...base, progressInterval: 1.5 }, 'expected an integer'],
    ['offlineBufferSize', { ...base, offlineBufferSize: -1 }, 'from 1 to'],
    ['namespace', { ...base, namespace: 'has space' }, 'letters, digits'],
    ['namespace', { ...base, namespace: 7 }, 'letters, digits'],
    ['archiveBufferSize', { ...base, archiveBufferSize: 0 }, 'from 1 to 10000000'],
    ['archiveBufferSize', { ...base, archiveBufferSize: 2.5 }, 'expected an integer'],
    ['prefetch', { ...base, prefetch: 10 }, 'is not a Cogman option'],
    ['requestTimout', { ...base, requestTimout: 10 }, '(did you mean "requestTimeout"?)'],
    ['maxPayloadSize', { ...base, maxPayloadSize: 0 }, 'from 1 to 536870912'],
    ['restApiKey', { ...base, restApiKey: 'short' }, '16 to 512 printable'],
    ['restApiKey', { ...base, restApiKey: 'with a space in the key' }, 'printable ASCII'],
    ['restApiKey', { ...base, restApiKey: 1234567890123456 }, 'printable ASCII'],
  ])('rejects a bad %s, naming it and its value', (option, options, reason) => {
    const error = errorOf(options);
    expect(error.option).toBe(option);
    expect(error.code).toBe('COGMAN_OPTIONS_INVALID');
    expect(error.message).toContain(`"${option}"`);
    expect(error.message).toContain(reason);
  });

  describe('redis', () => {
    const { redisUri: _uri, ...noUri } = base;
    // Clients that never connect (lazyConnect) and are disconnected after each test.
    const clients: { disconnect(): void }[] = [];
    afterEach(() => clients.splice(0).forEach((client) => client.disconnect()));

    it('takes ioredis options for a single node, described without their password', () => {
      const redis = { host: 'cache', port: 6380, db: 2, password: 's3cr3t' };
      const options = resolveCogmanOptions({ ...noUri, redis });
      expect(options.redisUri).toBeUndefined();
      expect(options.redis).toEqual({
        kind: 'options',
        topology: 'standalone',
        options: redis,
        description: 'redis://cache:6380/2',
      });
    });

    it('takes Sentinel options: sentinels and the master group name', () => {
      const redis = {
        sentinels: [
          { host: 's1', port: 26379 },
          { host: 's2', port: 26380 },
        ],
        name: 'mymaster',
        sentinelPassword: 's3cr3t',
      };
      expect(resolveCogmanOptions({ ...noUri, redis }).redis).toMatchObject({
        kind: 'options',
        topology: 'sentinel',
        description: 'redis+sentinel://s1:26379,s2:26380/mymaster',
      });
    });

    it("takes the application's Redis client (Sentinel or not) and Cluster, as they are", () => {
      const single = new Redis('redis://:s3cr3t@cache:6390/1', { lazyConnect: true });
      const sentinel = new Redis({ sentinels: [{ host: 's1', port: 1 }], name: 'm', lazyConnect: true });
      const cluster = new Cluster([{ host: 'n1', port: 7000 }, 'redis://:pw@n2:7001'], { lazyConnect: true });
      clients.push(single, sentinel, cluster);
      expect(resolveCogmanOptions({ ...noUri, redis: single }).redis).toEqual({
        kind: 'client',
        topology: 'standalone',
        client: single,
        description: 'redis://cache:6390/1',
      });
      expect(resolveCogmanOptions({ ...noUri, redis: sentinel }).redis).toMatchObject({
        kind: 'client',
        topology: 'sentinel',
        description: 'redis+sentinel://s1:1/m',
      });
      expect(resolveCogmanOptions({ ...noUri, redis: cluster }).redis).toEqual({
        kind: 'cluster',
        topology: 'cluster',
        client: cluster,
        description: 'redis+cluster://n1:7000,:***@n2:7001',
      });
    }); // prettier-ignore

    it('refuses a client or a Cluster with a keyPrefix, saying why', () => {
      const single = new Redis({ keyPrefix: 'app:', lazyConnect: true });
      const cluster = new Cluster([7000], { keyPrefix: 'app:', lazyConnect: true });
      const nodes = new Cluster([7000], {
        redisOptions: { keyPrefix: '{app}' },
        lazyConnect: true,
      });
      clients.push(single, cluster, nodes);
      for (const redis of [single, cluster, nodes]) {
        const error = errorOf({ ...noUri, redis });
        expect(error.option).toBe('redis.keyPrefix');
        expect(error.message).toContain('Cogman names its keys itself');
        expect(error.message).toContain('cogman:{<namespace>}:');
        expect(error.message).toContain('use the namespace option');
      }
    });
  });

  it('keeps an API key, and never shows a rejected one', () => {
    const key = 'k3y-0f-the-rest-api';
    expect(resolveCogmanOptions({ ...base, restApiKey: key }).restApiKey).toBe(key);
    const error = errorOf({ ...base, restApiKey: 'secret key 42 here' });
    expect(error.message).not.toContain('secret');
    expect(error.value).toBe('a string of 18 characters');
  });

  it('rejects something that is not an options object', () => {
    expect(errorOf(undefined).option).toBe('options');
    expect(errorOf('amqp://x').option).toBe('options');
  });

  it('never shows the password of a URI in an error', () => {
    const cases = [
      { ...base, amqpUri: 'http://admin:s3cr3t-pw@rabbit:5672' },
      { ...base, redisUri: 'ftp://:s3cr3t-pw@redis:6379' },
      { ...base, mongoUri: 'postgres://root:s3cr3t-pw@mongo/db' },
      { ...base, amqpUri: 'amqp://admin:s3cr3t-pw@' },
    ];
    for (const options of cases) {
      const error = errorOf(options);
      expect(error.message).not.toContain('s3cr3t-pw');
      expect(error.value).not.toContain('s3cr3t-pw');
      expect(error.message).toContain('***');
    }
  });
});

describe('redactUri', () => {
  it.each([
    ['amqp://guest:guest@localhost:5672/vhost', 'amqp://guest:***@localhost:5672/vhost'],
    ['redis://:pa:ss@word@host:6379/0', 'redis://:***@host:6379/0'],
    ['mongodb://u:p%40ss@a:1,b:2/db?x=y', 'mongodb://u:***@a:1,b:2/db?x=y'],
    ['amqp://localhost:5672', 'amqp://localhost:5672'],
    ['redis://user@host', 'redis://user@host'],
    ['not a uri', 'not a uri'],
  ])('%s -> %s', (uri, expected) => {
    expect(redactUri(uri)).toBe(expected);
  });
});

describe('resolveModuleExtras', () => {
  it('refuses a REST option it does not know, naming the one a typo stands for', () => {
    const extras = { ...DEFAULT_MODULE_EXTRAS, rest: { prefx: 'admin' } };
    expect(() => resolveModuleExtras(extras as never)).toThrow(
      'Invalid Cogman option "rest.prefx" (given): is not a REST option (did you mean "prefix"?)',
    );
    expect(
      resolveModuleExtras({ ...DEFAULT_MODULE_EXTRAS, rest: { prefix: 'admin' } }),
    ).toMatchObject({
      rest: { prefix: 'admin' },
    });
  });
});
