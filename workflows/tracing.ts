/**
 * The workflow interceptors of a worker that traces: bundled only into its
 * workflow bundle (worker/worker.ts: workflowBundle), never into the plain one.
 * They are @temporalio/interceptors-opentelemetry's, with two changes, and
 * they give workflow code its spans (workflows/observe.ts: useSpans).
 *
 * 1. Every span id is drawn from a random stream of the spans' own, never from
 *    the workflow's `Math.random()`: `uuid4()` must give workflow code the same
 *    ids whether or not a worker traces, or a session picked up by a worker
 *    with the other setting would re-derive other delta ids and break its
 *    audit chain.
 * 2. Queries and update validators are not traced. They run only live, never
 *    on replay: spans opened there would move the span id stream differently
 *    live and on replay, and a span still open across a worker restart would
 *    come back under another id than the one its children were exported with.
 */
import { context, SpanStatusCode, trace } from '@opentelemetry/api';
import { getRandomStream, type WorkflowInterceptors } from '@temporalio/workflow';
import {
  OpenTelemetryInboundInterceptor,
  OpenTelemetryInternalsInterceptor,
  OpenTelemetryOutboundInterceptor,
} from '@temporalio/interceptors-opentelemetry/lib/workflow';
import { TRACER_NAME } from '../src/core/observability';
import { useSpans, type WorkflowSpans } from './observe';

/** The random stream span ids are drawn from. */
export const SPAN_ID_STREAM = 'agent-hypervisor/tracing';

function onSpanIdStream<T>(fn: () => T): T {
  return getRandomStream(SPAN_ID_STREAM).with(fn);
}

/** The hypervisor's own spans, made with the tracer the SDK's interceptors register in this workflow. */
const workflowSpans: WorkflowSpans = {
  start(name, attributes) {
    const span = onSpanIdStream(() => trace.getTracer(TRACER_NAME).startSpan(name, { attributes }));
    const active = trace.setSpan(context.active(), span);
    return {
      run: (fn) => context.with(active, fn),
      set: (a) => void span.setAttributes(a),
      end(error) {
        if (error !== undefined) {
          span.setStatus({
            code: SpanStatusCode.ERROR,
            message: error instanceof Error ? error.message : String(error),
          });
        }
        span.end();
      },
    };
  },
  annotateRun: (attributes) => void trace.getActiveSpan()?.setAttributes(attributes),
};

const LIVE_ONLY = new Set(['handleQuery', 'validateUpdate']);

/** The interceptor, each of its methods run on the span id stream (or passed through, when live-only). */
function onOwnStream<T extends object>(interceptor: T): T {
  const wrapped: Record<string, unknown> = {};
  for (const name of Object.getOwnPropertyNames(Object.getPrototypeOf(interceptor))) {
    const method = (interceptor as Record<string, unknown>)[name];
    if (name === 'constructor' || typeof method !== 'function' || LIVE_ONLY.has(name)) continue;
    wrapped[name] = (...args: unknown[]) => onSpanIdStream(() => method.apply(interceptor, args));
  }
  return wrapped as T;
}

export const interceptors = (): WorkflowInterceptors => {
  useSpans(workflowSpans);
  return {
    inbound: [onOwnStream(new OpenTelemetryInboundInterceptor())],
    outbound: [onOwnStream(new OpenTelemetryOutboundInterceptor())],
    internals: [new OpenTelemetryInternalsInterceptor()],
  };
};
