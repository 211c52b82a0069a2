import {
  ForbiddenException,
  UnauthorizedException,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import { of } from 'rxjs';
import { Reflector } from '@nestjs/core';
import { resolveCogmanOptions, resolveModuleExtras, DEFAULT_MODULE_EXTRAS } from '../config';
import { DASHBOARD_HEADER, DASHBOARD_SHELL } from './rest.constants';
import { isLoopbackAddress, RestAccessGuard, type RestRequest } from './rest-access.guard';

const KEY = 'a-key-of-the-api-0123456789';

function guardWith(options: { restApiKey?: string; guards?: CanActivate[] } = {}) {
  const resolved = resolveCogmanOptions({
    amqpUri: 'amqp://x',
    redisUri: 'redis://x',
    ...(options.restApiKey ? { restApiKey: options.restApiKey } : {}),
  });
  return new RestAccessGuard(resolved, options.guards ?? []);
}

function contextOf(remoteAddress: string | undefined, headers: RestRequest['headers'] = {}) {
  const request: RestRequest = {
    headers: { host: '127.0.0.1:3000', ...headers },
    socket: { remoteAddress },
  };
  return {
    switchToHttp: () => ({ getRequest: () => request }),
  } as unknown as ExecutionContext;
}

describe('RestAccessGuard', () => {
  describe('with no key and no guard: loopback clients only', () => {
    it.each(['127.0.0.1', '127.0.0.2', '127.255.0.9', '::1', '::ffff:127.0.0.1'])(
      'answers %s',
      async (address) => {
        await expect(guardWith().canActivate(contextOf(address))).resolves.toBe(true);
      },
    );

    it.each([
      '10.0.0.5',
      '192.168.1.20',
      '::ffff:10.1.2.3',
      'fe80::1',
      '2001:db8::1',
      '128.0.0.1',
      '0.0.0.0',
    ])('refuses %s with 403, saying how to open access', async (address) => {
      const refusal = guardWith().canActivate(contextOf(address));
      await expect(refusal).rejects.toThrow(ForbiddenException);
      await expect(refusal).rejects.toThrow(/restApiKey.*rest\.guards/);
    });

    it('refuses a request without a known address', async () => {
      await expect(guardWith().canActivate(contextOf(undefined))).rejects.toThrow(
        ForbiddenException,
      );
    });

    it.each(['forwarded', 'x-forwarded-for', 'x-real-ip', 'x-forwarded-host'])(
      'refuses a loopback request that a proxy forwarded (%s)',
      async (header) => {
        const context = contextOf('127.0.0.1', { [header]: '203.0.113.7' });
        await expect(guardWith().canActivate(context)).rejects.toThrow(ForbiddenException);
      },
    );

    it('reads the address of a Fastify request too', async () => {
      const request = { headers: {}, raw: { socket: { remoteAddress: '10.0.0.1' } } };
      const context = {
        switchToHttp: () => ({ getRequest: () => request }),
      } as unknown as ExecutionContext;
      await expect(guardWith().canActivate(context)).rejects.toThrow(ForbiddenException);
    });
  });

  describe('against web pages, with no key and no guard', () => {
    it.each([
      ['a same-origin page', { origin: 'http://127.0.0.1:3000', 'sec-fetch-site': 'same-origin' }],
      ['curl (no Origin)', {}],
      ['a typed URL', { 'sec-fetch-site': 'none' }],
      ['localhost', { host: 'localhost:3000', origin: 'http://localhost:3000' }],
      ['[::1]', { host: '[::1]:3000' }],
    ])('answers %s', async (_case, headers) => {
      await expect(guardWith().canActivate(contextOf('127.0.0.1', headers))).resolves.toBe(true);
    });

    it.each([
      ['a page of another site', { origin: 'https://evil.example' }],
      ['another local port', { origin: 'http://127.0.0.1:8080' }],
      ['a cross-site fetch', { 'sec-fetch-site': 'cross-site' }],
      ['a same-site fetch', { 'sec-fetch-site': 'same-site' }],
      ['a rebound DNS name', { host: 'evil.example:3000', origin: 'http://evil.example:3000' }],
      ['no Host header', { host: undefined }],
      ['a malformed Origin', { origin: 'not a url' }],
    ])('refuses %s with 403', async (_case, headers) => {
      const refusal = guardWith().canActivate(contextOf('127.0.0.1', headers));
      await expect(refusal).rejects.toThrow(ForbiddenException);
      await expect(refusal).rejects.toThrow(/another site/);
    });
  });

  describe('with restApiKey', () => {
    const guard = guardWith({ restApiKey: KEY });

    it.each([
      ['x-api-key', { 'x-api-key': KEY }],
      ['a bearer token', { authorization: `Bearer ${KEY}` }],
      ['a bearer token, any case', { authorization: `bearer ${KEY}` }],
    ])('lets a remote client with the key in through %s', async (_how, headers) => {
      await expect(guard.canActivate(contextOf('203.0.113.7', headers))).resolves.toBe(true);
    });

    it.each([
      ['no key', {}],
      ['a wrong key', { 'x-api-key': `${KEY}x` }],
      ['a prefix of the key', { 'x-api-key': KEY.slice(0, 10) }],
      ['an empty key', { 'x-api-key': '' }],
      ['another scheme', { authorization: `Basic ${KEY}` }],
      ['two keys in one header', { 'x-api-key': [KEY, KEY] }],
    ])('refuses %s with 401, local clients included', async (_case, headers) => {
      await expect(guard.canActivate(contextOf('127.0.0.1', headers))).rejects.toThrow(
        UnauthorizedException,
      );
    });
  });

  describe('with the application’s guards', () => {
    class AllowHeader implements CanActivate {
      canActivate(context: ExecutionContext) {
        const request = context.switchToHttp().getRequest<RestRequest>();
        return request.headers['x-role'] === 'admin';
      }
    }
    class AllowObservable implements CanActivate {
      canActivate() {
        return of(true);
      }
    }

    it('lets a remote client through when every guard does', async () => {
      const guard = guardWith({ guards: [new AllowObservable(), new AllowHeader()] });
      await expect(
        guard.canActivate(contextOf('203.0.113.7', { 'x-role': 'admin' })),
      ).resolves.toBe(true);
    });

    it('refuses with 403, naming the guard, when one does not', async () => {
      const guard = guardWith({ guards: [new AllowObservable(), new AllowHeader()] });
      const refusal = guard.canActivate(contextOf('127.0.0.1', { 'x-role': 'viewer' }));
      await expect(refusal).rejects.toThrow(ForbiddenException);
      await expect(refusal).rejects.toThrow('Refused by AllowHeader');
    });

    it('requires the key as well when both are configured', async () => {
      const guard = guardWith({ restApiKey: KEY, guards: [new AllowHeader()] });
      await expect(
        guard.canActivate(contextOf('203.0.113.7', { 'x-role': 'admin' })),
      ).rejects.toThrow(UnauthorizedException);
      await expect(
        guard.canActivate(contextOf('203.0.113.7', { 'x-role': 'admin', 'x-api-key': KEY })),
      ).resolves.toBe(true);
    });
  });

  it('tells loopback addresses apart', () => {
    expect(isLoopbackAddress('127.1.2.3')).toBe(true);
    expect(isLoopbackAddress('::1')).toBe(true);
    expect(isLoopbackAddress('::ffff:127.9.9.9')).toBe(true);
    expect(isLoopbackAddress('127.0.0.1.example.com')).toBe(false);
    expect(isLoopbackAddress('::2')).toBe(false);
  });

  describe('the dashboard and unsafe requests', () => {
    const shape = (readOnly: boolean) =>
      resolveModuleExtras({
        ...DEFAULT_MODULE_EXTRAS,
        startDashboard: true,
        dashboard: { readOnly },
      });
    const guardOf = (options: {
      restApiKey?: string;
      guards?: CanActivate[];
      readOnly?: boolean;
    }) =>
      new RestAccessGuard(
        resolveCogmanOptions({
          amqpUri: 'amqp://x',
          redisUri: 'redis://x',
          ...(options.restApiKey ? { restApiKey: options.restApiKey } : {}),
        }),
        options.guards ?? [],
        shape(options.readOnly ?? false),
        new Reflector(),
      );
    class Shell {
      page() {}
    }
    Reflect.defineMetadata(DASHBOARD_SHELL, true, Shell);
    class Api {
      call() {}
    }
    const request = (
      method: string,
      headers: RestRequest['headers'],
      target: 'shell' | 'api' = 'api',
    ) => {
      const req: RestRequest = {
        method,
        headers: { host: '127.0.0.1:3000', ...headers },
        socket: { remoteAddress: '127.0.0.1' },
      };
      return {
        switchToHttp: () => ({ getRequest: () => req }),
        getHandler: () => (target === 'shell' ? Shell.prototype.page : Api.prototype.call),
        getClass: () => (target === 'shell' ? Shell : Api),
      } as unknown as ExecutionContext;
    };
    const allow = { canActivate: () => true };

    it('refuses an unsafe request from a page of another site when no key is configured', async () => {
      for (const site of ['cross-site', 'same-site']) {
        await expect(
          guardOf({ guards: [allow] }).canActivate(request('POST', { 'sec-fetch-site': site })),
        ).rejects.toThrow(/another site/);
      }
      await expect(
        guardOf({ guards: [allow] }).canActivate(
          request('GET', { 'sec-fetch-site': 'cross-site' }),
        ),
      ).resolves.toBe(true);
      await expect(
        guardOf({ guards: [allow] }).canActivate(
          request('POST', { 'sec-fetch-site': 'same-origin' }),
        ),
      ).resolves.toBe(true);
    });

    it('takes an unsafe request from another site that carries the key', async () => {
      await expect(
        guardOf({ restApiKey: KEY }).canActivate(
          request('POST', { 'sec-fetch-site': 'cross-site', 'x-api-key': KEY }),
        ),
      ).resolves.toBe(true);
    });

    it('refuses the read-only dashboard’s unsafe requests, not its reads nor scripts', async () => {
      const guard = guardOf({ readOnly: true });
      const refusal = guard.canActivate(request('POST', { [DASHBOARD_HEADER]: '1' }));
      await expect(refusal).rejects.toThrow(ForbiddenException);
      await expect(refusal).rejects.toThrow(/read-only/);
      await expect(guard.canActivate(request('GET', { [DASHBOARD_HEADER]: '1' }))).resolves.toBe(
        true,
      );
      await expect(guard.canActivate(request('POST', {}))).resolves.toBe(true);
      await expect(
        guardOf({ readOnly: false }).canActivate(request('POST', { [DASHBOARD_HEADER]: '1' })),
      ).resolves.toBe(true);
    });

    it('serves the dashboard’s page without the key, but not the API', async () => {
      const guard = guardOf({ restApiKey: KEY });
      await expect(guard.canActivate(request('GET', {}, 'shell'))).resolves.toBe(true);
      await expect(guard.canActivate(request('GET', {}, 'api'))).rejects.toThrow(
        UnauthorizedException,
      );
    });

    it('runs the application’s guards on the page too', async () => {
      const deny = { canActivate: () => false };
      await expect(
        guardOf({ guards: [deny] }).canActivate(request('GET', {}, 'shell')),
      ).rejects.toThrow(ForbiddenException);
    });
  });
});
