/**
 * The workflow interceptors of a worker that traces: bundled only into its
 * workflow bundle (worker/worker.ts: workflowBundle), never into the plain one.
 * They are @temporalio/interceptors-opentelemetry's, with two changes:
 *
 * 1. Every span id is drawn from the spans' own random stream
 *    (workflows/observe.ts), not from the workflow's `Math.random()`, which
 *    `uuid4()` — delta ids — shares.
 * 2. Queries and update validators are not traced. They run only live, never
 *    on replay: spans opened there would move the span id stream differently
 *    live and on replay, and a span still open across a worker restart would
 *    come back under another id than the one its children were exported with.
 */
import type { WorkflowInterceptors } from '@temporalio/workflow';
import {
  OpenTelemetryInboundInterceptor,
  OpenTelemetryInternalsInterceptor,
  OpenTelemetryOutboundInterceptor,
} from '@temporalio/interceptors-opentelemetry/lib/workflow';
import { enableSpans, onSpanIdStream } from './observe';

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
  enableSpans();
  return {
    inbound: [onOwnStream(new OpenTelemetryInboundInterceptor())],
    outbound: [onOwnStream(new OpenTelemetryOutboundInterceptor())],
    internals: [new OpenTelemetryInternalsInterceptor()],
  };
};
