/**
 * The names the hypervisor's metrics and spans go by (README: Metrics and
 * traces). Sandbox-safe: workflows, activities and the worker share them.
 * Label values are bounded sets — rule codes, states, ring numbers — never
 * ids or free text, so a busy worker's metric series stay few.
 */
import { WAIT } from './gate';

/** Prometheus metrics, served with the Temporal SDK's own at HV_METRICS_ADDRESS. */
export const METRICS = {
  /** Labels: gate (check_action | step | retry), result (allowed | denied), reason (a GateRule, or deadline_passed). */
  gateDecisions: {
    name: 'hv_gate_decisions_total',
    help: 'Gate decisions: where they were made, the result and the rule that decided',
  },
  /** Labels: cause (witness | drift | compensation_failed). One per vouchee slashed, cascades included. */
  slashes: { name: 'hv_slashes_total', help: 'Agents slashed, by what caused it' },
  /** Labels: result (ok | failed). A failed one escalates to a slash. */
  compensations: { name: 'hv_compensations_total', help: 'Compensations of saga steps, by result' },
  /** Labels: wait_for (consensus | witness), result (allowed | denied). */
  approvalWait: { name: 'hv_approval_wait_seconds', help: 'How long a saga step waited for approvals or a witness' },
  /** Labels: ring (0–3), cause (join | demotion | promotion). */
  ringAssignments: {
    name: 'hv_ring_assignments_total',
    help: 'Agents placed in a ring: at join, and each demotion or promotion',
  },
  /** Labels: state (completed | compensated | escalated | failed). */
  sagas: { name: 'hv_sagas_total', help: 'Sagas ended, by final state' },
  /** No labels. Deltas a retried batch had already stored are not counted again. */
  auditAppends: { name: 'hv_audit_appended_deltas_total', help: 'Deltas newly written to the audit store' },
} as const;

/** Bucket bounds of the histograms, in their unit (seconds): approvals take seconds to hours. */
export const HISTOGRAM_BUCKETS: Record<string, number[]> = {
  [METRICS.approvalWait.name]: [0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600],
};

/** Span names of the hypervisor's own spans (the SDK's interceptors add RunWorkflow:…, StartActivity:…, …). */
export const SPANS = {
  gate: 'hv.gate',
  step: 'hv.step',
  compensation: 'hv.compensation',
  slash: 'hv.slash',
} as const;

/** Span attributes. */
export const ATTR = {
  sessionId: 'hv.session_id',
  sagaId: 'hv.saga_id',
  stepId: 'hv.step_id',
  actionId: 'hv.action_id',
  agentDid: 'hv.agent_did',
  gate: 'hv.gate',
  decision: 'hv.decision',
  rule: 'hv.rule',
  ringRequired: 'hv.ring_required',
  agentRing: 'hv.agent_ring',
  sigmaEff: 'hv.sigma_eff',
  stepState: 'hv.step_state',
  compensation: 'hv.compensation',
  slashCause: 'hv.slash_cause',
} as const;

/** Where a gate decision was made: the session's checkAction, the saga before a step, the step activity before a retry. */
export type GateSite = 'check_action' | 'step' | 'retry';
/** Why an agent was slashed: an SRE's witnessed slash, a drift report, a failed compensation. */
export const SLASH_CAUSE = {
  witnessed: WAIT.witness,
  drift: 'drift',
  compensationFailed: 'compensation_failed',
} as const;
export type SlashCause = (typeof SLASH_CAUSE)[keyof typeof SLASH_CAUSE];
/** Why an agent was placed in a ring: its handshake (join), or a demotion or promotion. */
export const RING_CAUSE = { join: 'join', demotion: 'demotion', promotion: 'promotion' } as const;
export type RingCause = (typeof RING_CAUSE)[keyof typeof RING_CAUSE];

/** The tracer name of the hypervisor's own spans, in workflows and activities alike. */
export const TRACER_NAME = 'agent-hypervisor';
