/**
 * Metrics and spans from activities (README: Metrics and traces). Metrics go
 * through the activity context's meter: an activity runs once per attempt and
 * is never replayed. Spans exist only when the worker traces (it hands over a
 * tracer); they open under the SDK's span for the attempt (RunActivity:…).
 */
import { Context } from '@temporalio/activity';
import type { Attributes, Tracer } from '@opentelemetry/api';
import type { GateDecision } from '../src/core/gate';
import { ATTR, METRICS, SPANS, type GateSite } from '../src/core/observability';

/** A gate decided in an activity: counted, and a span when the worker traces. */
export function gateDecided(
  tracer: Tracer | undefined,
  site: GateSite,
  decision: GateDecision,
  attributes: Attributes,
): void {
  const result = decision.allowed ? 'allowed' : 'denied';
  Context.current()
    .metricMeter.createCounter(METRICS.gateDecisions.name, undefined, METRICS.gateDecisions.help)
    .add(1, { gate: site, result, reason: decision.rule });
  tracer
    ?.startSpan(SPANS.gate, {
      attributes: {
        ...attributes,
        [ATTR.gate]: site,
        [ATTR.decision]: result,
        [ATTR.rule]: decision.rule,
        [ATTR.ringRequired]: decision.requiredRing,
        [ATTR.agentRing]: decision.agentRing,
        [ATTR.sigmaEff]: decision.sigmaEff,
      },
    })
    .end();
}

/** Deltas the audit store newly wrote. */
export function auditAppended(deltas: number): void {
  if (deltas > 0)
    Context.current()
      .metricMeter.createCounter(METRICS.auditAppends.name, undefined, METRICS.auditAppends.help)
      .add(deltas);
}
