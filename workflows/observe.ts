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
 *   module (workflows/tracing.ts) plugs them in as each workflow starts;
 *   without it every span helper here is a no-op, and the plain bundle holds
 *   no OpenTelemetry code at all (only types are imported here).
 * - Telemetry only, never a decision: every helper first checks that it runs
 *   in workflow context (`wf.inWorkflowContext()`) and drops the metric or
 *   span silently otherwise. A continuation that resumes after its run was
 *   evicted from the worker's cache (a worker paused past the sticky queue
 *   timeout, issue 24 N24) has no workflow context: touching the metric meter
 *   or a span's sink there throws an IllegalStateError the SDK cannot pin on
 *   any run, and it takes the whole worker thread down. In context the check
 *   is always true, live and on replay, so no history changes.
 */
import * as wf from '@temporalio/workflow';
import type { Attributes } from '@opentelemetry/api';
import type { EvidenceWait, GateDecision } from '../src/core/gate';
import { ATTR, METRICS, SPANS, type GateSite, type RingCause, type SlashCause } from '../src/core/observability';

export interface HvSpan {
  /** Runs fn with this span as the parent of the spans fn opens (gates, activities). */
  run<T>(fn: () => T): T;
  set(attributes: Attributes): void;
  /** Ends the span; with an error, marks it failed. */
  end(error?: unknown): void;
}

/** What a tracing bundle plugs in. */
export interface WorkflowSpans {
  start(name: string, attributes: Attributes): HvSpan;
  /** Adds attributes to the span the SDK opened for this workflow run (RunWorkflow:…). */
  annotateRun(attributes: Attributes): void;
}

const NO_SPAN: HvSpan = { run: (fn) => fn(), set() {}, end() {} };

/** True while workflow code runs in an activation of its own run; false after it was evicted (or outside any workflow). */
function inContext(): boolean {
  try {
    return wf.inWorkflowContext();
  } catch {
    return false;
  }
}

/** A span whose every call is dropped outside workflow context (run still runs fn: that is the workflow's own code). */
function guarded(span: HvSpan): HvSpan {
  return {
    run: (fn) => (inContext() ? span.run(fn) : fn()),
    set(attributes) {
      if (inContext()) span.set(attributes);
    },
    end(error) {
      if (inContext()) span.end(error);
    },
  };
}

/** Module state is per workflow: set by the tracing interceptors as the workflow starts. */
let spans: WorkflowSpans | undefined;

export function useSpans(implementation: WorkflowSpans): void {
  spans = implementation;
}

/** Opens a span under the current one. Attributes are a thunk: a worker that does not trace builds none. */
export function startSpan(name: string, attributes: () => Attributes): HvSpan {
  return spans && inContext() ? guarded(spans.start(name, attributes())) : NO_SPAN;
}

export function annotateRun(attributes: () => Attributes): void {
  if (spans && inContext()) spans.annotateRun(attributes());
}

function count(metric: { name: string; help: string }, tags: Record<string, string | number>): void {
  if (!inContext()) return;
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
export function approvalWaited(waitFor: EvidenceWait, seconds: number, allowed: boolean): void {
  if (!inContext()) return;
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
export function ringAssigned(ring: number, cause: RingCause): void {
  count(METRICS.ringAssignments, { ring, cause });
}

export function sagaEnded(state: string): void {
  count(METRICS.sagas, { state });
}
