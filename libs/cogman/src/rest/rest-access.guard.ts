import {
  ForbiddenException,
  Inject,
  Injectable,
  Optional,
  UnauthorizedException,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import { createHash, timingSafeEqual } from 'node:crypto';
import { Reflector } from '@nestjs/core';
import { isObservable, lastValueFrom } from 'rxjs';
import {
  MODULE_SHAPE,
  RESOLVED_OPTIONS,
  type CogmanModuleShape,
  type ResolvedCogmanOptions,
} from '../config';
import { DASHBOARD_HEADER, DASHBOARD_SHELL, REST_APP_GUARDS } from './rest.constants';

/** What the guard reads of a request (Express's and Fastify's both have it). */
export interface RestRequest {
  method?: string;
  headers: Record<string, string | string[] | undefined>;
  socket?: { remoteAddress?: string };
  raw?: { socket?: { remoteAddress?: string } };
}

/** Headers a proxy adds: a request carrying one did not come from this machine's own client. */
const FORWARDING_HEADERS = ['forwarded', 'x-forwarded-for', 'x-real-ip', 'x-forwarded-host'];

/**
 * Who may use the REST API. With `restApiKey`, a request must carry the key (`x-api-key`, or
 * `Authorization: Bearer`): 401 otherwise. With `rest.guards`, each must let it through (403
 * otherwise). With neither, only clients on loopback addresses are answered (403 for others,
 * and for proxied requests, which look local but are not). Without a key, an unsafe request a
 * browser sends for a page of another site is refused (guards may read cookies); so are the actions of a
 * read-only dashboard. The dashboard's page and assets need no key (the page asks for it).
 */
@Injectable()
export class RestAccessGuard implements CanActivate {
  private readonly keyDigest: Buffer | null;

  constructor(
    @Inject(RESOLVED_OPTIONS) options: ResolvedCogmanOptions,
    @Inject(REST_APP_GUARDS) private readonly guards: CanActivate[],
    @Optional() @Inject(MODULE_SHAPE) private readonly shape: CogmanModuleShape | null = null,
    @Optional() @Inject(Reflector) private readonly reflector: Reflector | null = null,
  ) {
    this.keyDigest = options.restApiKey ? digest(options.restApiKey) : null;
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<RestRequest>();
    const unsafe = !['GET', 'HEAD', 'OPTIONS'].includes((request.method ?? 'GET').toUpperCase());
    // Without a key, what authenticates a request may be ambient (a cookie a guard reads): a
    // page of another site must not use it. A request with the key was given it on purpose.
    if (unsafe && !this.keyDigest && isFromAnotherSite(request)) {
      throw new ForbiddenException({
        code: 'COGMAN_REST_FORBIDDEN',
        message: 'Refused an unsafe request sent by a web page of another site',
      });
    }
    if (
      unsafe &&
      this.shape?.dashboard.readOnly &&
      request.headers[DASHBOARD_HEADER] !== undefined
    ) {
      throw new ForbiddenException({
        code: 'COGMAN_DASHBOARD_READ_ONLY',
        message: 'The dashboard is read-only (dashboard.readOnly)',
      });
    }
    const shell =
      this.reflector?.getAllAndOverride<boolean>(DASHBOARD_SHELL, [
        context.getHandler(),
        context.getClass(),
      ]) ?? false;
    if (this.keyDigest && !shell) {
      const given = presentedKey(request);
      // Digests have one length, so the comparison takes the same time whatever was sent.
      if (given === null || !timingSafeEqual(digest(given), this.keyDigest)) {
        throw new UnauthorizedException({
          code: 'COGMAN_REST_UNAUTHORIZED',
          message:
            given === null
              ? 'This API needs a key: send it in an x-api-key header or as Authorization: Bearer <key>'
              : 'The API key is not valid',
        });
      }
    }
    for (const guard of this.guards) {
      const verdict = guard.canActivate(context);
      const allowed = isObservable(verdict) ? await lastValueFrom(verdict) : await verdict;
      if (!allowed) {
        throw new ForbiddenException({
          code: 'COGMAN_REST_FORBIDDEN',
          message: `Refused by ${guard.constructor.name}`,
        });
      }
    }
    if (!this.keyDigest && this.guards.length === 0) {
      if (!isLoopbackRequest(request)) {
        throw new ForbiddenException({
          code: 'COGMAN_REST_FORBIDDEN',
          message:
            'The Cogman REST API answers only local clients until access is configured: set the restApiKey option, or give guards in rest.guards',
        });
      }
      if (isCrossSiteRequest(request)) {
        throw new ForbiddenException({
          code: 'COGMAN_REST_FORBIDDEN',
          message:
            'Refused a request from a web page of another site (or a host name that is not local); set restApiKey to use the API from a browser app',
        });
      }
    }
    return true;
  }
}

/** The key a request presents, or null. */
export function presentedKey(request: RestRequest): string | null {
  const header = request.headers['x-api-key'];
  if (typeof header === 'string' && header !== '') return header;
  const authorization = request.headers.authorization;
  const bearer =
    typeof authorization === 'string' ? /^Bearer[ ]+([^ ]+)[ ]*$/i.exec(authorization) : null;
  return bearer ? bearer[1] : null;
}

/** Whether the client is on a loopback address and the request was not forwarded by a proxy. */
export function isLoopbackRequest(request: RestRequest): boolean {
  if (FORWARDING_HEADERS.some((name) => request.headers[name] !== undefined)) return false;
  const address = request.socket?.remoteAddress ?? request.raw?.socket?.remoteAddress;
  return address !== undefined && isLoopbackAddress(address);
}

/**
 * Whether a browser sent the request for a page of another origin, or under a host name that is
 * not local (DNS rebinding): a local client's browser must not let any web page drive the API.
 */
export function isCrossSiteRequest(request: RestRequest): boolean {
  const host = request.headers.host;
  if (typeof host !== 'string' || !isLoopbackHost(host)) return true;
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return true;
  const origin = request.headers.origin;
  if (origin === undefined) return false;
  try {
    return typeof origin !== 'string' || new URL(origin).host !== host.toLowerCase();
  } catch {
    return true;
  }
}

/** Whether a browser says the request comes from a page of another site (Sec-Fetch-Site). */
function isFromAnotherSite(request: RestRequest): boolean {
  const site = request.headers['sec-fetch-site'];
  return site === 'cross-site' || site === 'same-site';
}

/** `localhost`, a loopback address, with or without a port. */
function isLoopbackHost(host: string): boolean {
  const name = host.toLowerCase().replace(/:\d+$/, '');
  return (
    name === 'localhost' ||
    name.endsWith('.localhost') ||
    name === '[::1]' ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name)
  );
}

/** 127.0.0.0/8, ::1, and IPv4 loopback addresses mapped to IPv6. */
export function isLoopbackAddress(address: string): boolean {
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4) || address === '::1';
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
