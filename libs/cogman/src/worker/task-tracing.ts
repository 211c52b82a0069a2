import type { TaskEnvelope } from '../task';
import {
  openTelemetry,
  parseTraceParent,
  TRACEPARENT,
  TRACESTATE,
  type OtelApi,
  type OtelContext,
  type OtelSpan,
} from '../util/trace-context';

/** The consumer span of one attempt, and the context its handler runs in. */
export interface AttemptTrace {
  run<T>(work: () => T): T;
  end(outcome: { ok: true } | { ok: false; error: unknown }): void;
}

/**
 * Continues the trace a task carries (its `traceparent` and `tracestate` headers, given at send
 * time or taken from the sender's active span) when `@opentelemetry/api` is installed: each
 * attempt gets a consumer span, child of the sender's, and its handler runs in that span's
 * context. A retry carries the same headers, so every attempt is in the same trace. A task with
 * no `traceparent`, or a process without OpenTelemetry, costs one header lookup.
 */
export function traceAttempt(task: TaskEnvelope, queue: string): AttemptTrace | null {
  const header = task.headers[TRACEPARENT];
  if (header === undefined) return null;
  const api = openTelemetry();
  const parent = api && parseTraceParent(header);
  if (!api || !parent) return null;
  return new ConsumerTrace(api, task, queue, parent);
}

class ConsumerTrace implements AttemptTrace {
  private readonly span: OtelSpan;
  private readonly context: OtelContext;

  constructor(
    private readonly api: OtelApi,
    task: TaskEnvelope,
    queue: string,
    parent: { traceId: string; spanId: string; traceFlags: number },
  ) {
    const state = task.headers[TRACESTATE];
    const remote = api.trace.setSpanContext(api.ROOT_CONTEXT, {
      ...parent,
      isRemote: true,
      ...(state ? { traceState: api.createTraceState(state) } : {}),
    });
    this.span = api.trace.getTracer('@cogman/nestjs').startSpan(
      `${task.name} process`,
      {
        kind: api.SpanKind.CONSUMER,
        attributes: {
          'messaging.system': 'rabbitmq',
          'messaging.operation.type': 'process',
          'messaging.destination.name': queue,
          'messaging.message.id': task.taskId,
          'cogman.task.name': task.name,
          'cogman.task.attempt': task.attempt,
          'cogman.task.original_id': task.originalTaskId,
        },
      },
      remote,
    );
    this.context = api.trace.setSpan(remote, this.span);
  }

  run<T>(work: () => T): T {
    return this.api.context.with(this.context, work);
  }

  end(outcome: { ok: true } | { ok: false; error: unknown }): void {
    if (!outcome.ok) {
      const { error } = outcome;
      this.span.recordException(error instanceof Error ? error : String(error));
      this.span.setStatus({
        code: this.api.SpanStatusCode.ERROR,
        message: error instanceof Error ? error.message : String(error),
      });
    }
    this.span.end();
  }
}
