import {
  Injectable,
  Logger,
  Module,
  type CanActivate,
  type ExecutionContext,
  type INestApplication,
  type ModuleMetadata,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { CogmanModule, OptionsInvalidError, type CogmanModuleOptions } from '@cogman/nestjs';
import { call } from './support/http';
import { AMQP_URI, REDIS_URI, cleanUp, uniqueNamespace } from './support/services';

const KEY = 'k3y-of-the-cogman-api-7f3a91';

/** A service of the application that its guard needs (from an imported module). */
@Injectable()
class Tokens {
  isAdmin(token: unknown): boolean {
    return token === 'admin-token';
  }
}

@Module({ providers: [Tokens], exports: [Tokens] })
class TokensModule {}

@Injectable()
class AdminGuard implements CanActivate {
  constructor(private readonly tokens: Tokens) {}

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<{ headers: Record<string, unknown> }>();
    return this.tokens.isAdmin(request.headers['x-admin-token']);
  }
}

describe('REST API mounting and access', () => {
  const namespaces: string[] = [];
  const apps: INestApplication[] = [];

  afterAll(async () => {
    for (const app of apps.splice(0)) await app.close();
    for (const ns of namespaces) await cleanUp(ns);
  });

  const namespace = (label: string) => {
    const name = uniqueNamespace(label);
    namespaces.push(name);
    return name;
  };

  /** Boots `imports` as an HTTP application on loopback; resolves with its origin. */
  async function serve(imports: NonNullable<ModuleMetadata['imports']>): Promise<string> {
    @Module({ imports })
    class AuthTestModule {}
    const app = await NestFactory.create(AuthTestModule, {
      logger: process.env.COGMAN_TEST_LOGS ? new Logger() : false,
      abortOnError: false,
    });
    apps.push(app);
    await app.listen(0, '127.0.0.1');
    return `http://127.0.0.1:${(app.getHttpServer().address() as { port: number }).port}`;
  }

  const base = (ns: string): CogmanModuleOptions => ({
    amqpUri: AMQP_URI,
    redisUri: REDIS_URI,
    namespace: ns,
    startWorker: false,
  });

  describe('with restApiKey from forRootAsync, under a prefix of its own', () => {
    let api: string;

    beforeAll(async () => {
      const ns = namespace('auth-key');
      const origin = await serve([
        CogmanModule.forRootAsync({
          startRestServer: true,
          rest: { prefix: '/admin/jobs/' },
          useFactory: () => Promise.resolve({ ...base(ns), restApiKey: KEY, metrics: true }),
        }),
      ]);
      api = `${origin}/admin/jobs`;
    });

    it('answers 401 without a key, or with a wrong one, and says how to send it', async () => {
      for (const headers of [
        {} as Record<string, string>,
        { 'x-api-key': 'wrong-key-0123456789' },
        { authorization: 'Bearer wrong-key-0123456789' },
        { authorization: `Basic ${KEY}` },
      ]) {
        const answer = await call(`${api}/ping`, { headers });
        expect(answer.status).toBe(401);
        expect(answer.headers.get('www-authenticate')).toBe('Bearer realm="cogman"');
        expect(answer.body).toMatchObject({
          statusCode: 401,
          error: 'Unauthorized',
          code: 'COGMAN_REST_UNAUTHORIZED',
        });
      }
      const missing = await call(`${api}/queues`);
      expect(missing.body.message).toContain('x-api-key');
    });

    it('answers with the key, in x-api-key or as a bearer token', async () => {
      expect((await call(`${api}/ping`, { headers: { 'x-api-key': KEY } })).status).toBe(200);
      const queues = await call(`${api}/queues`, { headers: { authorization: `Bearer ${KEY}` } });
      expect(queues.status).toBe(200);
      expect(queues.body.queues).toHaveLength(3);
    });

    it('guards the metrics too', async () => {
      expect((await call(`${api}/metrics`)).status).toBe(401);
      expect((await call(`${api}/metrics`, { headers: { 'x-api-key': KEY } })).status).toBe(200);
    });

    it('is mounted only under its prefix', async () => {
      const origin = api.replace('/admin/jobs', '');
      expect((await call(`${origin}/cogman/ping`, { headers: { 'x-api-key': KEY } })).status).toBe(
        404,
      );
    });
  });

  describe('with a guard of the application', () => {
    let api: string;

    beforeAll(async () => {
      const origin = await serve([
        CogmanModule.forRoot({
          ...base(namespace('auth-guard')),
          startRestServer: true,
          rest: { guards: [AdminGuard], imports: [TokensModule] },
        }),
      ]);
      api = `${origin}/cogman`;
    });

    it('lets through what the guard accepts, and answers 403 for the rest', async () => {
      expect(
        (await call(`${api}/ping`, { headers: { 'x-admin-token': 'admin-token' } })).status,
      ).toBe(200);
      const refused = await call(`${api}/ping`, { headers: { 'x-admin-token': 'guest' } });
      expect(refused.status).toBe(403);
      expect(refused.body).toMatchObject({
        code: 'COGMAN_REST_FORBIDDEN',
        message: 'Refused by AdminGuard',
      });
    });

    it('decides alone: a forwarded request the guard accepts is answered', async () => {
      const answer = await call(`${api}/ping`, {
        headers: { 'x-admin-token': 'admin-token', 'x-forwarded-for': '203.0.113.9' },
      });
      expect(answer.status).toBe(200);
    });
  });

  it('mounts nothing without startRestServer', async () => {
    const origin = await serve([CogmanModule.forRoot(base(namespace('auth-off')))]);
    expect((await call(`${origin}/cogman/ping`)).status).toBe(404);
  });

  it('fails the boot when useFactory asks for the REST API, saying where to put it', async () => {
    const booting = serve([
      CogmanModule.forRootAsync({
        // @ts-expect-error -- a compile error too: startRestServer belongs beside useFactory
        useFactory: () => ({ ...base(namespace('auth-late')), startRestServer: true }),
      }),
    ]);
    await expect(booting).rejects.toThrow(OptionsInvalidError);
    await expect(booting).rejects.toThrow(
      /at the top level of forRootAsync\(\{ startRestServer: true, useFactory \}\)/,
    );
  });

  it('fails the boot on a restApiKey too short to be safe, never showing it', async () => {
    const booting = serve([
      CogmanModule.forRootAsync({
        startRestServer: true,
        useFactory: () => ({ ...base(namespace('auth-short')), restApiKey: 'tiny-secret' }),
      }),
    ]);
    await expect(booting).rejects.toThrow('Invalid Cogman option "restApiKey"');
    await expect(booting).rejects.not.toThrow('tiny-secret');
  });

  it.each([
    [{ prefix: '../up' }, 'rest.prefix'],
    [{ prefix: 'a b' }, 'rest.prefix'],
    [{ guards: 'AdminGuard' }, 'rest.guards'],
  ])('refuses rest options %j when the module is defined', (rest, option) => {
    expect(() =>
      CogmanModule.forRoot({
        ...base('unused'),
        startRestServer: true,
        rest: rest as never,
      }),
    ).toThrow(`Invalid Cogman option "${option}"`);
  });
});
