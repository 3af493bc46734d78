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
import { requiredRing, ringFromSigma } from './rings';
import { OMEGA } from './reversibility';
import type { ActionView, AgentView } from './sagaContract';

/** What a step needs before its check can pass: nothing, approvals, or a witness. */
export type GateWait = 'none' | 'consensus' | 'witness';

export interface GateDecision {
  allowed: boolean;
  requiredRing: Ring;
  agentRing: Ring;
  sigmaEff: number;
  reason: string;
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
}

/** An action nobody declared is a write that cannot be undone (ω of NONE, ring 1), with nothing to run. */
export const UNDECLARED_ACTION: Omit<ActionView, 'actionId'> = {
  readOnly: false, admin: false, reversibility: 'NONE', omega: OMEGA.NONE.default, executeApi: null, undoApi: null,
};

/** The agent's ring for an action of this ω: from σ_eff (ring 1 only with consensus), never above its cap. */
export function ringFor(agent: AgentView, omega: number, hasConsensus: boolean): Ring {
  return Math.max(ringFromSigma(sigmaEffWith(agent, omega), hasConsensus), agent.ringCap) as Ring;
}

export function gateStep(input: GateInput): GateDecision {
  const action = input.action ?? { actionId: '', ...UNDECLARED_ACTION };
  const required = requiredRing(action);
  const agent = input.agent;
  const sigmaEff = agent ? sigmaEffWith(agent, action.omega) : 0;
  const agentRing: Ring = agent ? ringFor(agent, action.omega, input.hasConsensus) : 3;
  const base = { requiredRing: required, agentRing, sigmaEff, requiresConsensus: required <= 1, requiresSreWitness: required === 0 };
  const deny = (reason: string, waitFor: GateWait = 'none'): GateDecision => ({ ...base, allowed: false, reason, waitFor });

  if (!input.ringsOnly && input.sessionState !== 'active') return deny(`the session is ${input.sessionState}, not active`);
  if (!agent || !agent.active) return deny('the agent is not an active participant of the session');
  if (!input.ringsOnly) {
    if (!input.action) return deny('the action was not declared by any participant of the session: nothing to run');
    if (!action.executeApi) return deny(`action ${action.actionId} declares no executeApi: nothing to run`);
  }
  const sigma = sigmaEff.toFixed(3);
  if (required === 0) {
    if (agent.ringCap > 1) return deny(`ring 0 needs an agent in ring 1; the agent is capped at ring ${agent.ringCap}`);
    if (sigmaEff <= 0.95) return deny(`ring 0 needs an agent in ring 1 (σ_eff > 0.95); σ_eff is ${sigma}`);
    if (!input.hasConsensus) return deny('ring 0 needs an agent in ring 1: consensus (a quorum of approvals) is missing', 'consensus');
    if (!input.hasSreWitness) return deny('ring 0 needs an SRE witness co-sign', 'witness');
    return { ...base, agentRing: 1, allowed: true, waitFor: 'none', reason: 'ring 1 agent with consensus and an SRE witness co-sign' };
  }
  if (required === 1) {
    if (agent.ringCap > 1) return deny(`ring 1 needed; the agent is capped at ring ${agent.ringCap}`);
    if (sigmaEff <= 0.95) return deny(`ring 1 needs σ_eff > 0.95; σ_eff is ${sigma}`);
    if (!input.hasConsensus) return deny('ring 1 needs consensus: a quorum of approvals for this step', 'consensus');
  }
  if (required === 2 && sigmaEff <= 0.6) return deny(`ring 2 needs σ_eff > 0.60; σ_eff is ${sigma}`);
  if (agentRing > required) return deny(`the agent is in ring ${agentRing}; the action needs ring ${required}`);
  return { ...base, allowed: true, waitFor: 'none', reason: `ring ${agentRing} may run a ring ${required} action` };
}

/** σ_eff for an action of risk weight ω: min(1, σ_raw + ω × bondSum). */
export function sigmaEffWith(view: { sigmaRaw: number; bondSum: number }, omega: number): number {
  return Math.min(1, view.sigmaRaw + omega * view.bondSum);
}
