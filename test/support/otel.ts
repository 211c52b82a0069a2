import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import {
  context,
  trace,
  ROOT_CONTEXT,
  type Context,
  type ContextManager,
  type Span,
  type SpanContext,
  type SpanOptions,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';

/** A span as the recording tracer keeps it. */
export interface RecordedSpan {
  name: string;
  kind: number | undefined;
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  attributes: Record<string, unknown>;
  status: { code: number; message?: string } | undefined;
  ended: boolean;
}

/** A context manager on AsyncLocalStorage (what the OpenTelemetry SDK for Node registers). */
class StorageContextManager implements ContextManager {
  private readonly storage = new AsyncLocalStorage<Context>();
  active(): Context {
    return this.storage.getStore() ?? ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    ctx: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    return this.storage.run(ctx, () => fn.apply(thisArg, args));
  }
  bind<T>(ctx: Context, target: T): T {
    if (typeof target !== 'function') return target;
    const fn = target as unknown as (...args: unknown[]) => unknown;
    return ((...args: unknown[]) => this.with(ctx, () => fn(...args))) as unknown as T;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.storage.disable();
    return this;
  }
}

/**
 * A tracer provider that records every span in memory, with a context manager, registered as the
 * global ones: what a test needs of the OpenTelemetry SDK (not installed here), built on the API.
 */
export function recordSpans(): { spans: RecordedSpan[]; tracer: Tracer; stop(): void } {
  const spans: RecordedSpan[] = [];
  const tracer: Tracer = {
    startSpan(name: string, options: SpanOptions = {}, ctx: Context = context.active()): Span {
      const parent = trace.getSpanContext(ctx);
      const spanContext: SpanContext = {
        traceId: parent?.traceId ?? randomBytes(16).toString('hex'),
        spanId: randomBytes(8).toString('hex'),
        traceFlags: 1,
        traceState: parent?.traceState,
      };
      const recorded: RecordedSpan = {
        name,
        kind: options.kind,
        traceId: spanContext.traceId,
        spanId: spanContext.spanId,
        parentSpanId: parent?.spanId,
        attributes: { ...options.attributes },
        status: undefined,
        ended: false,
      };
      spans.push(recorded);
      const span: Span = {
        spanContext: () => spanContext,
        setAttribute: (key, value) => ((recorded.attributes[key] = value), span),
        setAttributes: (attributes) => (Object.assign(recorded.attributes, attributes), span),
        addEvent: () => span,
        addLink: () => span,
        addLinks: () => span,
        setStatus: (status) => ((recorded.status = status), span),
        updateName: (newName) => ((recorded.name = newName), span),
        end: () => void (recorded.ended = true),
        isRecording: () => !recorded.ended,
        recordException: () => {},
      };
      return span;
    },
    startActiveSpan(name: string, ...rest: unknown[]) {
      const fn = rest[rest.length - 1] as (span: Span) => unknown;
      const span = tracer.startSpan(name);
      return context.with(trace.setSpan(context.active(), span), () => fn(span));
    },
  };
  const provider: TracerProvider = { getTracer: () => tracer };
  const manager = new StorageContextManager();
  context.setGlobalContextManager(manager);
  trace.setGlobalTracerProvider(provider);
  return {
    spans,
    tracer,
    stop() {
      trace.disable();
      context.disable();
    },
  };
}
