/**
 * W3C trace context (`traceparent`, `tracestate`) and the part of `@opentelemetry/api` Cogman
 * uses, declared here so that the package stays an optional peer dependency: it is loaded if the
 * application has it installed, and Cogman works the same (headers only) without it.
 */

/** The header names of W3C trace context, as they travel in `headers`. */
export const TRACEPARENT = 'traceparent';
export const TRACESTATE = 'tracestate';

/** A parsed `traceparent`. */
export interface TraceParent {
  traceId: string;
  spanId: string;
  traceFlags: number;
}

const TRACEPARENT_FORMAT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/** The trace a `traceparent` header names, or null for a malformed one. */
export function parseTraceParent(header: string | undefined): TraceParent | null {
  const match = header === undefined ? null : TRACEPARENT_FORMAT.exec(header.trim());
  if (!match) return null;
  const [, version, traceId, spanId, flags, rest] = match;
  // Version ff is invalid; version 00 has nothing after the flags; ids may not be all zeros.
  if (version === 'ff' || (version === '00' && rest !== undefined)) return null;
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return null;
  return { traceId, spanId, traceFlags: parseInt(flags, 16) };
}

/** A `traceparent` header for a span. */
export function formatTraceParent({ traceId, spanId, traceFlags }: TraceParent): string {
  return `00-${traceId}-${spanId}-${(traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}

/* What Cogman uses of @opentelemetry/api 1.x (structurally the package's own types). */

export interface OtelSpanContext {
  traceId: string;
  spanId: string;
  traceFlags: number;
  isRemote?: boolean;
  traceState?: { serialize(): string };
}

export interface OtelSpan {
  spanContext(): OtelSpanContext;
  setStatus(status: { code: number; message?: string }): unknown;
  recordException(exception: Error | string): void;
  end(): void;
}

export type OtelContext = object;

export interface OtelApi {
  trace: {
    getTracer(
      name: string,
      version?: string,
    ): {
      startSpan(
        name: string,
        options: { kind: number; attributes: Record<string, string | number> },
        context: OtelContext,
      ): OtelSpan;
    };
    getActiveSpan(): OtelSpan | undefined;
    setSpan(context: OtelContext, span: OtelSpan): OtelContext;
    setSpanContext(context: OtelContext, spanContext: OtelSpanContext): OtelContext;
  };
  context: {
    active(): OtelContext;
    with<T>(context: OtelContext, fn: () => T): T;
  };
  createTraceState(text?: string): { serialize(): string };
  isSpanContextValid(spanContext: OtelSpanContext): boolean;
  ROOT_CONTEXT: OtelContext;
  SpanKind: { CONSUMER: number };
  SpanStatusCode: { ERROR: number };
}

let loaded: OtelApi | null | undefined;

/** `@opentelemetry/api` if the application has it installed, else null (looked for once). */
export function openTelemetry(
  load: () => unknown = () =>
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- an optional peer dependency
    require('@opentelemetry/api'),
): OtelApi | null {
  if (loaded === undefined) {
    try {
      loaded = load() as OtelApi;
    } catch {
      loaded = null;
    }
  }
  return loaded;
}

/**
 * The trace context headers of the span active now (with OpenTelemetry installed and a span
 * active), to send with a task; null when there is none.
 */
export function activeTraceHeaders(): Record<string, string> | null {
  const api = openTelemetry();
  const span = api?.trace.getActiveSpan();
  if (!api || !span) return null;
  const spanContext = span.spanContext();
  if (!api.isSpanContextValid(spanContext)) return null;
  const headers: Record<string, string> = { [TRACEPARENT]: formatTraceParent(spanContext) };
  const state = spanContext.traceState?.serialize();
  if (state) headers[TRACESTATE] = state;
  return headers;
}
