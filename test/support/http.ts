import {
  Logger,
  Module,
  type DynamicModule,
  type INestApplication,
  type Provider,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import {
  CogmanModule,
  type CogmanModuleExtras,
  type CogmanModuleOptions,
  type CogmanRestOptions,
} from '@cogman/nestjs';
import { AMQP_URI, REDIS_URI } from './services';

/** A running HTTP application and the base URL of its Cogman API. */
export interface HttpApp {
  app: INestApplication;
  /** e.g. http://127.0.0.1:41234/cogman */
  api: string;
  /** e.g. http://127.0.0.1:41234 */
  origin: string;
}

export interface HttpAppOptions {
  rest?: CogmanRestOptions;
  providers?: Provider[];
  /** Other modules of the application. */
  imports?: (DynamicModule | (new () => unknown))[];
  /** Express's `query parser` setting ('extended' parses `a[b]=c` into objects). */
  queryParser?: 'simple' | 'extended';
  host?: string;
  /** Module extras besides `rest` (e.g. `startDashboard`). */
  extras?: Partial<Omit<CogmanModuleExtras, 'rest'>>;
  /** `app.setGlobalPrefix` of the application. */
  globalPrefix?: string;
  /** Called before the application listens (middleware, e.g. a Content-Security-Policy). */
  configure?: (app: NestExpressApplication) => void;
}

/**
 * Boots a real HTTP application with Cogman and its REST API (`startRestServer`), listening on a
 * port the OS picks, on loopback.
 */
export async function startHttpApp(
  options: Partial<CogmanModuleOptions> & { namespace: string },
  {
    rest,
    providers = [],
    imports = [],
    queryParser,
    host = '127.0.0.1',
    extras = {},
    globalPrefix,
    configure,
  }: HttpAppOptions = {},
): Promise<HttpApp> {
  @Module({
    imports: [
      CogmanModule.forRoot({
        amqpUri: AMQP_URI,
        redisUri: REDIS_URI,
        startRestServer: true,
        ...(rest ? { rest } : {}),
        ...extras,
        ...options,
      }),
      ...imports,
    ],
    providers,
  })
  class HttpTestModule {}

  const app = await NestFactory.create<NestExpressApplication>(HttpTestModule, {
    logger: process.env.COGMAN_TEST_LOGS ? new Logger() : ['error'],
  });
  if (queryParser) app.set('query parser', queryParser);
  if (globalPrefix) app.setGlobalPrefix(globalPrefix);
  configure?.(app);
  await app.listen(0, host);
  const address = app.getHttpServer().address() as { port: number };
  const origin = `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
  const prefix = [globalPrefix, rest?.prefix ?? 'cogman']
    .filter((part) => part !== undefined)
    .map((part) => part.replace(/^\/+|\/+$/g, ''))
    .join('/');
  return { app, origin, api: `${origin}/${prefix}` };
}

/** A JSON request; resolves with the status, headers and parsed body (text when not JSON). */
export async function call(
  url: string,
  init: {
    method?: string;
    body?: unknown;
    rawBody?: string;
    headers?: Record<string, string>;
  } = {},
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- specs read answers field by field
): Promise<{ status: number; headers: Headers; body: any; text: string }> {
  const headers: Record<string, string> = { ...init.headers };
  let body: string | undefined = init.rawBody;
  if (init.body !== undefined) {
    body = JSON.stringify(init.body);
    headers['content-type'] = 'application/json';
  } else if (init.rawBody !== undefined) {
    headers['content-type'] ??= 'application/json';
  }
  const response = await fetch(url, {
    method: init.method ?? 'GET',
    headers,
    body,
    // A request the application never answers fails the spec instead of hanging it.
    signal: AbortSignal.timeout(15_000),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: response.status, headers: response.headers, body: parsed, text };
}
