/**
 * Metrics and spans from workflow code (README: Metrics and traces). Neither
 * adds a command: a history is the same with them or without, and so is replay.
 *
 * - Metrics go through the SDK's workflow `metricMeter`, which emits nothing
 *   while a workflow replays (@temporalio/workflow src/metrics.ts: every
 *   counter, histogram and gauge checks `workflowInfo().unsafe.isReplaying`
 *   before its sink call). A worker that restarts, or evicts a workflow from
 *   its cache and replays it, never counts a decision twice.
 * - Spans exist only in the bundle of a worker that traces: its interceptor
 *   module (workflows/tracing.ts) turns them on; without it every helper here
 *   is a no-op. Finished spans leave through the SDK's exporter sink, which the
 *   worker does not call on replay.
 * - Span ids come from a random stream of their own, never from the workflow's
 *   `Math.random()`: `uuid4()` must give workflow code the same ids whether or
 *   not a worker traces, or a session picked up by a worker with the other
 *   setting would re-derive different delta ids and break its audit chain.
 */
import * as wf from '@temporalio/workflow';
import { context, SpanStatusCode, trace, type Attributes } from '@opentelemetry/api';
import type { GateDecision } from '../src/gate';
import { ATTR, METRICS, SPANS, TRACER_NAME, type GateSite, type SlashCause } from '../src/observability';

/** The random stream span ids are drawn from (see the module note). */
export const SPAN_ID_STREAM = 'agent-hypervisor/tracing';

let spansOn = false;

/** Called by the tracing interceptor module as each workflow starts; module state is per workflow. */
export function enableSpans(): void {
  spansOn = true;
}

/** Runs fn on the span ids' own random stream. */
export function onSpanIdStream<T>(fn: () => T): T {
  return wf.getRandomStream(SPAN_ID_STREAM).with(fn);
}

export interface HvSpan {
  /** Runs fn with this span as the parent of the spans fn opens (gates, activities). */
  run<T>(fn: () => T): T;
  set(attributes: Attributes): void;
  /** Ends the span; with an error, marks it failed. */
  end(error?: unknown): void;
}

const NO_SPAN: HvSpan = { run: (fn) => fn(), set() {}, end() {} };

/** Opens a span under the current one. Attributes are a thunk: a worker that does not trace builds none. */
export function startSpan(name: string, attributes: () => Attributes): HvSpan {
  if (!spansOn) return NO_SPAN;
  const span = onSpanIdStream(() => trace.getTracer(TRACER_NAME).startSpan(name, { attributes: attributes() }));
  const active = trace.setSpan(context.active(), span);
  return {
    run: (fn) => context.with(active, fn),
    set: (a) => void span.setAttributes(a),
    end(error) {
      if (error !== undefined)
        span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
      span.end();
    },
  };
}

/** Adds attributes to the span the SDK opened for this workflow run (RunWorkflow:…). */
export function annotateRun(attributes: () => Attributes): void {
  if (spansOn) trace.getActiveSpan()?.setAttributes(attributes());
}

function count(metric: { name: string; help: string }, tags: Record<string, string | number>): void {
  wf.metricMeter.createCounter(metric.name, undefined, metric.help).add(1, tags);
}

/**
 * A gate decided: it is counted, and its span — `span`, or a new one under the
 * current span — ends carrying the decision. `rule` is the decision's, or the
 * saga's own `deadline_passed`.
 */
export function gateDecided(
  site: GateSite,
  decision: GateDecision,
  rule: string,
  attributes: () => Attributes,
  span?: HvSpan,
): void {
  // A decision read from a history older than rule codes has none.
  const reason = rule ?? 'unknown';
  count(METRICS.gateDecisions, { gate: site, result: decision.allowed ? 'allowed' : 'denied', reason });
  const s = span ?? startSpan(SPANS.gate, attributes);
  s.set({
    [ATTR.gate]: site,
    [ATTR.decision]: decision.allowed ? 'allowed' : 'denied',
    [ATTR.rule]: reason,
    [ATTR.ringRequired]: decision.requiredRing,
    [ATTR.agentRing]: decision.agentRing,
    [ATTR.sigmaEff]: decision.sigmaEff,
  });
  s.end();
}

/** A step waited for evidence, then its gate decided. */
export function approvalWaited(waitFor: 'consensus' | 'witness', seconds: number, allowed: boolean): void {
  wf.metricMeter
    .createHistogram(METRICS.approvalWait.name, 'float', 's', METRICS.approvalWait.help)
    .record(Math.max(0, seconds), { wait_for: waitFor, result: allowed ? 'allowed' : 'denied' });
}

/** A compensation ended: counted, and its span closed with the result. */
export function compensated(span: HvSpan, ok: boolean, error?: unknown): void {
  count(METRICS.compensations, { result: ok ? 'ok' : 'failed' });
  span.set({ [ATTR.compensation]: ok ? 'ok' : 'failed' });
  span.end(error);
}

/** An agent was slashed (one per vouchee, cascades included). */
export function slashed(cause: SlashCause, attributes: () => Attributes): void {
  count(METRICS.slashes, { cause });
  startSpan(SPANS.slash, () => ({ ...attributes(), [ATTR.slashCause]: cause })).end();
}

/** An agent was placed in a ring: at join, or by a demotion or promotion. */
export function ringAssigned(ring: number, cause: 'join' | 'demotion' | 'promotion'): void {
  count(METRICS.ringAssignments, { ring, cause });
}

export function sagaEnded(state: string): void {
  count(METRICS.sagas, { state });
}
