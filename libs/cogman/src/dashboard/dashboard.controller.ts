import {
  Controller,
  Get,
  Inject,
  NotFoundException,
  Param,
  Req,
  Res,
  ServiceUnavailableException,
  SetMetadata,
  StreamableFile,
  UseFilters,
  UseGuards,
} from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import {
  MODULE_SHAPE,
  RESOLVED_OPTIONS,
  type CogmanModuleShape,
  type ResolvedCogmanOptions,
} from '../config';
import { RestAccessGuard } from '../rest/rest-access.guard';
import { RestExceptionFilter } from '../rest/rest-exception.filter';
import { DASHBOARD_SHELL } from '../rest/rest.constants';
import { DashboardAssets } from './dashboard-assets';

/** What the handlers use of a reply: Express's and Fastify's both have these. */
interface Reply {
  header(name: string, value: string): unknown;
  status(code: number): unknown;
  getHeader?(name: string): unknown;
}

/** What the handlers read of a request (Express: originalUrl; Fastify: url). */
interface PageRequest {
  originalUrl?: string;
  url?: string;
  headers: Record<string, string | string[] | undefined>;
}

/** The Content-Security-Policy of the page: nothing but its own files and the API. */
export const DASHBOARD_CSP = [
  "default-src 'self'",
  "img-src 'self' data:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const IMMUTABLE = 'public, max-age=31536000, immutable';
const ASSET_NAME = /^[A-Za-z0-9._-]{1,200}$/;

/**
 * Serves the dashboard's single-page app at `<rest.prefix>/dashboard/`, behind the REST API's
 * guard and filter. Every URL in the page is relative to it, so the base path is the one the
 * browser asked for: it works at the root, under a global prefix, and behind a proxy that strips
 * one. The page holds no data and needs no API key; the app asks for the key when the API does.
 */
@ApiExcludeController()
@UseGuards(RestAccessGuard)
@UseFilters(RestExceptionFilter)
@SetMetadata(DASHBOARD_SHELL, true)
@Controller('dashboard')
export class DashboardController {
  private readonly page: string;

  constructor(
    @Inject(DashboardAssets) private readonly assets: DashboardAssets | null,
    @Inject(MODULE_SHAPE) shape: CogmanModuleShape,
    @Inject(RESOLVED_OPTIONS) options: ResolvedCogmanOptions,
  ) {
    const settings = JSON.stringify({
      readOnly: shape.dashboard.readOnly,
      apiKey: options.restApiKey !== undefined,
    });
    this.page = assets
      ? assets.index.replace(
          '</head>',
          `<meta name="cogman-dashboard" content="${escapeAttribute(settings)}"></head>`,
        )
      : '';
  }

  @Get()
  index(@Req() request: PageRequest, @Res({ passthrough: true }) reply: Reply): string {
    const path = (request.originalUrl ?? request.url ?? '').split('?')[0];
    reply.header('Cache-Control', 'no-store');
    if (!path.endsWith('/')) {
      // Relative, so that it holds behind a proxy that strips a prefix.
      reply.status(308);
      reply.header('Location', `${path.slice(path.lastIndexOf('/') + 1)}/`);
      return '';
    }
    if (!this.assets) {
      throw new ServiceUnavailableException({
        code: 'COGMAN_DASHBOARD_NOT_BUILT',
        message: 'The dashboard was not built: run npm run build',
      });
    }
    reply.header('Content-Type', 'text/html; charset=utf-8');
    // A policy the application set already (e.g. helmet's) is left as it is.
    if (!reply.getHeader?.('Content-Security-Policy')) {
      reply.header('Content-Security-Policy', DASHBOARD_CSP);
    }
    reply.header('X-Content-Type-Options', 'nosniff');
    reply.header('X-Frame-Options', 'DENY');
    reply.header('Referrer-Policy', 'no-referrer');
    return this.page;
  }

  @Get('assets/:file')
  asset(
    @Param('file') file: string,
    @Req() request: PageRequest,
    @Res({ passthrough: true }) reply: Reply,
  ): StreamableFile {
    const asset = ASSET_NAME.test(file) ? this.assets?.asset(file) : undefined;
    if (!asset) {
      throw new NotFoundException({ code: 'COGMAN_NOT_FOUND', message: 'No such file' });
    }
    const accepts = String(request.headers['accept-encoding'] ?? '');
    const gzip = asset.gzipped !== null && /\bgzip\b/.test(accepts);
    reply.header('Cache-Control', IMMUTABLE);
    reply.header('X-Content-Type-Options', 'nosniff');
    reply.header('Vary', 'Accept-Encoding');
    if (gzip) reply.header('Content-Encoding', 'gzip');
    const body = gzip ? asset.gzipped! : asset.body;
    return new StreamableFile(body, { type: asset.type, length: body.length });
  }
}

function escapeAttribute(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
}
