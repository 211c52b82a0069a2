import { formatTraceParent, type openTelemetry, parseTraceParent } from './trace-context';

describe('W3C trace context', () => {
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const spanId = '00f067aa0ba902b7';

  it('parses a traceparent and formats it back', () => {
    const header = `00-${traceId}-${spanId}-01`;
    expect(parseTraceParent(header)).toEqual({ traceId, spanId, traceFlags: 1 });
    expect(formatTraceParent({ traceId, spanId, traceFlags: 1 })).toBe(header);
    // A later version may add fields after the flags.
    expect(parseTraceParent(`01-${traceId}-${spanId}-00-more`)).toEqual({
      traceId,
      spanId,
      traceFlags: 0,
    });
  });

  it.each([
    ['no header', undefined],
    ['not a traceparent', 'nonsense'],
    ['version ff', `ff-${traceId}-${spanId}-01`],
    ['version 00 with more fields', `00-${traceId}-${spanId}-01-x`],
    ['an all-zero trace id', `00-${'0'.repeat(32)}-${spanId}-01`],
    ['an all-zero span id', `00-${traceId}-${'0'.repeat(16)}-01`],
    ['upper-case hex', `00-${traceId.toUpperCase()}-${spanId}-01`],
  ])('refuses %s', (_what, header) => {
    expect(parseTraceParent(header)).toBeNull();
  });

  it('works without @opentelemetry/api when the package cannot be loaded', () => {
    jest.isolateModules(() => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- a fresh module state
      const isolated = require('./trace-context') as { openTelemetry: typeof openTelemetry };
      expect(
        isolated.openTelemetry(() => {
          throw new Error("Cannot find module '@opentelemetry/api'");
        }),
      ).toBeNull();
    });
  });
});
