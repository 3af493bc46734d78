/**
 * The gate before a saga step (SPEC §1 applied to one step, §4's per-action ω,
 * §11.5's evidence). Pure: the same view and evidence give the same decision
 * in the session, in its saga and in the step activity.
 *
 * - σ_eff is computed with the ω of the action being checked.
 * - Consensus (a quorum of approvals for this step's digest) is what lets
 *   σ_eff > 0.95 count as ring 1; a witness never lifts a ring (§1 [resolved]):
 *   a ring 0 step needs the agent to hold ring 1 (σ_eff > 0.95 and consensus)
 *   and an SRE witness's co-sign for that step.
 * - A ring cap (MEDIUM drift, untrustworthy history) is never lifted.
 */
import type { Ring } from './common';
import { OMEGA, requiredRing, ringFromSigma } from './ringRules';
import type { ActionView, AgentView } from './sagaContract';

/**
 * What a step needs before its check can pass: nothing, approvals, or a witness. Declared once (the answers'
 * `waitFor`, metric labels and the CLI read it from here); `witness` is also the name of the request that
 * supplies it.
 */
export const WAIT = { none: 'none', consensus: 'consensus', witness: 'witness' } as const;
export type GateWait = (typeof WAIT)[keyof typeof WAIT];
export const GATE_WAITS = [WAIT.none, WAIT.consensus, WAIT.witness] as const;
/** A wait for evidence: what a step can be held for. */
export type EvidenceWait = Exclude<GateWait, typeof WAIT.none>;

/**
 * Which rule decided, as a code: what metrics and traces label a decision with
 * (`reason` is the text for people). `rejected` is the session's: an approver
 * rejected the step.
 */
export const GATE_RULES = [
  'ok',
  'session_not_active',
  'agent_not_active',
  'action_not_declared',
  'no_execute_api',
  'ring_capped',
  'sigma_too_low',
  'consensus_missing',
  'witness_missing',
  'ring_too_low',
  'rejected',
  'agent_killed',
  'agent_quarantined',
  'elevation_expired',
  'rate_limited',
  'budget_exhausted',
] as const;
export type GateRule = (typeof GATE_RULES)[number];

export interface GateDecision {
  allowed: boolean;
  requiredRing: Ring;
  agentRing: Ring;
  sigmaEff: number;
  reason: string;
  rule: GateRule;
  requiresConsensus: boolean;
  requiresSreWitness: boolean;
  /** Denied only for want of this evidence: the step may wait for it. */
  waitFor: GateWait;
}

export interface GateInput {
  agent: AgentView | undefined;
  /** The action as registered in the session; undefined for an action nobody declared. */
  action: ActionView | undefined;
  /** The session's lifecycle state; steps run only while it is active. */
  sessionState: string;
  hasConsensus: boolean;
  hasSreWitness: boolean;
  /** Check rings only (checkAction): not the session's state, nor whether the action declared something to run. */
  ringsOnly?: boolean;
  /** Workflow time, for an elevation's end (SPEC §12); without it no elevation counts. */
  now?: number;
}

/** The ring an active elevation grants the agent now, if any (SPEC §12). */
export function elevatedRing(agent: AgentView, now: number | undefined): 1 | 2 | null {
  const e = agent.elevation;
  return e && now !== undefined && now < e.until ? e.ring : null;
}

/** An action nobody declared is a write that cannot be undone (ω of NONE, ring 1), with nothing to run. */
export const UNDECLARED_ACTION: Omit<ActionView, 'actionId'> = {
  readOnly: false,
  admin: false,
  reversibility: 'NONE',
  omega: OMEGA.NONE.default,
  executeApi: null,
  undoApi: null,
};

/**
 * The agent's ring for an action of this ω: from σ_eff (ring 1 only with
 * consensus) or an active elevation, whichever is more privileged — never
 * above its cap.
 */
export function ringFor(agent: AgentView, omega: number, hasConsensus: boolean, elevated: 1 | 2 | null = null): Ring {
  return Math.max(
    Math.min(ringFromSigma(sigmaEffWith(agent, omega), hasConsensus), elevated ?? 3),
    agent.ringCap,
  ) as Ring;
}

/**
 * The decision for one step (or one action, `ringsOnly`). Adding a field here
 * changes what checkAction records unless the session leaves it out of the
 * delta (workflows/session/context.ts: recordedDecision).
 */
export function gateStep(input: GateInput): GateDecision {
  const decision = decide(input);
  // A denial an elevation would have prevented, had it not ended: say so (SPEC §12).
  const e = input.agent?.elevation;
  if (
    !decision.allowed &&
    e &&
    input.now !== undefined &&
    input.now >= e.until &&
    e.ring <= decision.requiredRing &&
    ['ring_capped', 'sigma_too_low', 'consensus_missing', 'ring_too_low'].includes(decision.rule)
  ) {
    return {
      ...decision,
      rule: 'elevation_expired',
      waitFor: 'none',
      reason: `the agent's elevation to ring ${e.ring} expired at ${new Date(e.until).toISOString()}; ${decision.reason}`,
    };
  }
  return decision;
}

function decide(input: GateInput): GateDecision {
  const action = input.action ?? { actionId: '', ...UNDECLARED_ACTION };
  const required = requiredRing(action);
  const agent = input.agent;
  const sigmaEff = agent ? sigmaEffWith(agent, action.omega) : 0;
  const elevated = agent ? elevatedRing(agent, input.now) : null;
  const agentRing: Ring = agent ? ringFor(agent, action.omega, input.hasConsensus, elevated) : 3;
  const base = {
    requiredRing: required,
    agentRing,
    sigmaEff,
    requiresConsensus: required <= 1,
    requiresSreWitness: required === 0,
  };
  const deny = (rule: GateRule, reason: string, waitFor: GateWait = WAIT.none): GateDecision => ({
    ...base,
    allowed: false,
    reason,
    rule,
    waitFor,
  });

  if (!input.ringsOnly && input.sessionState !== 'active')
    return deny('session_not_active', `the session is ${input.sessionState}, not active`);
  if (!agent || !agent.active) return deny('agent_not_active', 'the agent is not an active participant of the session');
  // SPEC §12: a killed agent runs nothing; a quarantined one read-only actions only.
  if (agent.restriction === 2) return deny('agent_killed', 'the agent was killed in this session: it may run nothing');
  if (agent.restriction === 1 && !action.readOnly)
    return deny('agent_quarantined', 'the agent is quarantined: it may run read-only actions only');
  if (!input.ringsOnly) {
    if (!input.action)
      return deny(
        'action_not_declared',
        'the action was not declared by any participant of the session: nothing to run',
      );
    if (!action.executeApi)
      return deny('no_execute_api', `action ${action.actionId} declares no executeApi: nothing to run`);
  }
  const sigma = sigmaEff.toFixed(3);
  // An active elevation to ring 1 stands for σ_eff > 0.95 and consensus: it was approved by the quorum (SPEC §12).
  const ring1ByElevation = elevated === 1 && agent.ringCap <= 1;
  if (required === 0) {
    if (agent.ringCap > 1)
      return deny('ring_capped', `ring 0 needs an agent in ring 1; the agent is capped at ring ${agent.ringCap}`);
    if (!ring1ByElevation) {
      if (sigmaEff <= 0.95)
        return deny('sigma_too_low', `ring 0 needs an agent in ring 1 (σ_eff > 0.95); σ_eff is ${sigma}`);
      if (!input.hasConsensus)
        return deny(
          'consensus_missing',
          'ring 0 needs an agent in ring 1: consensus (a quorum of approvals) is missing',
          WAIT.consensus,
        );
    }
    if (!input.hasSreWitness) return deny('witness_missing', 'ring 0 needs an SRE witness co-sign', WAIT.witness);
    return {
      ...base,
      agentRing: 1,
      allowed: true,
      waitFor: 'none',
      reason: ring1ByElevation
        ? 'ring 1 by elevation with an SRE witness co-sign'
        : 'ring 1 agent with consensus and an SRE witness co-sign',
      rule: 'ok',
    };
  }
  if (required === 1) {
    if (agent.ringCap > 1) return deny('ring_capped', `ring 1 needed; the agent is capped at ring ${agent.ringCap}`);
    if (!ring1ByElevation) {
      if (sigmaEff <= 0.95) return deny('sigma_too_low', `ring 1 needs σ_eff > 0.95; σ_eff is ${sigma}`);
      if (!input.hasConsensus)
        return deny('consensus_missing', 'ring 1 needs consensus: a quorum of approvals for this step', WAIT.consensus);
    }
  }
  if (required === 2 && sigmaEff <= 0.6 && !(elevated !== null && agent.ringCap <= 2))
    return deny('sigma_too_low', `ring 2 needs σ_eff > 0.60; σ_eff is ${sigma}`);
  if (agentRing > required)
    return deny('ring_too_low', `the agent is in ring ${agentRing}; the action needs ring ${required}`);
  return {
    ...base,
    allowed: true,
    waitFor: 'none',
    reason: `ring ${agentRing} may run a ring ${required} action${elevated !== null && agentRing === elevated ? ' (elevated)' : ''}`,
    rule: 'ok',
  };
}

/** σ_eff for an action of risk weight ω: min(1, σ_raw + ω × bondSum). */
export function sigmaEffWith(view: { sigmaRaw: number; bondSum: number }, omega: number): number {
  return Math.min(1, view.sigmaRaw + omega * view.bondSum);
}
