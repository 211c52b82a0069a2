import type { INestApplicationContext } from '@nestjs/common';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import {
  CogmanClient,
  TaskHandler,
  type CogmanTaskHandler,
  type TaskContext,
} from '@cogman/nestjs';
import { testHarness } from './support/harness';
import { recordSpans } from './support/otel';

/** Task id → the trace and span active in its handler, and the traceparent it received. */
const inHandler = new Map<string, { traceId?: string; spanId?: string; traceparent?: string }>();

/** Fails its first attempt. */
@TaskHandler('traced', { retry: 1, backoff: { type: 'fixed', delay: 50 } })
class TracedHandler implements CogmanTaskHandler {
  async handle(_payload: unknown, ctx: TaskContext) {
    await Promise.resolve();
    const span = trace.getActiveSpan()?.spanContext();
    inHandler.set(ctx.task.taskId, {
      traceId: span?.traceId,
      spanId: span?.spanId,
      traceparent: ctx.task.headers.traceparent,
    });
    if (ctx.task.attempt === 1) throw new Error('first attempt fails');
  }
}

describe('Trace context propagation (W3C traceparent, OpenTelemetry)', () => {
  const harness = testHarness();
  let app: INestApplicationContext;
  let client: CogmanClient;
  const otel = recordSpans();

  beforeAll(async () => {
    app = await harness.app({ namespace: harness.namespace('trace') }, [TracedHandler]);
    client = app.get(CogmanClient);
  });

  beforeEach(() => {
    inHandler.clear();
    otel.spans.length = 0;
  });

  afterAll(async () => {
    otel.stop();
    await harness.afterEach();
    await harness.afterAll();
  });

  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const parentSpanId = '00f067aa0ba902b7';

  it('runs each attempt in a consumer span of the trace given at send time, retries included', async () => {
    const task = await client.sendTask({
      name: 'traced',
      headers: { traceparent: `00-${traceId}-${parentSpanId}-01`, tracestate: 'vendor=x' },
    });
    const done = await client.waitForResult(task.taskId, { timeout: 20_000 });
    expect(done.attempt).toBe(2);
    const consumers = otel.spans.filter((span) => span.kind === SpanKind.CONSUMER);
    expect(consumers).toHaveLength(2);
    for (const span of consumers) {
      expect(span).toMatchObject({
        name: 'traced process',
        traceId,
        parentSpanId,
        ended: true,
        attributes: { 'messaging.system': 'rabbitmq', 'cogman.task.original_id': task.taskId },
      });
    }
    expect(consumers.map((span) => span.attributes['cogman.task.attempt'])).toEqual([1, 2]);
    expect(consumers[0].status).toMatchObject({
      code: SpanStatusCode.ERROR,
      message: 'first attempt fails',
    });
    expect(consumers[1].status).toBeUndefined();
    // Each handler ran inside its attempt's span.
    for (const [i, attempt] of [task.taskId, done.taskId].entries()) {
      expect(inHandler.get(attempt)).toEqual({
        traceId,
        spanId: consumers[i].spanId,
        traceparent: `00-${traceId}-${parentSpanId}-01`,
      });
    }
  });

  it("sends the active span's context with a task that has none", async () => {
    const producer = await otel.tracer.startActiveSpan('checkout', async (span) => {
      try {
        return await client.sendTask({ name: 'traced' });
      } finally {
        span.end();
      }
    });
    const producerSpan = otel.spans.find((span) => span.name === 'checkout')!;
    expect(producer.headers.traceparent).toBe(
      `00-${producerSpan.traceId}-${producerSpan.spanId}-01`,
    );
    const done = await client.waitForResult(producer.taskId, { timeout: 20_000 });
    const consumers = otel.spans.filter((span) => span.kind === SpanKind.CONSUMER);
    expect(consumers.map((span) => [span.traceId, span.parentSpanId])).toEqual([
      [producerSpan.traceId, producerSpan.spanId],
      [producerSpan.traceId, producerSpan.spanId],
    ]);
    expect(inHandler.get(done.taskId)?.traceId).toBe(producerSpan.traceId);
  });

  it('makes no span for a task sent outside any trace', async () => {
    const task = await client.sendTask({ name: 'traced' });
    await client.waitForResult(task.taskId, { timeout: 20_000 });
    expect(task.headers.traceparent).toBeUndefined();
    expect(otel.spans).toEqual([]);
    expect(inHandler.get(task.taskId)?.traceId).toBeUndefined();
  });

  it('ignores a malformed traceparent', async () => {
    const task = await client.sendTask({ name: 'traced', headers: { traceparent: 'nonsense' } });
    await client.waitForResult(task.taskId, { timeout: 20_000 });
    expect(otel.spans).toEqual([]);
  });
});
