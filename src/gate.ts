/**
 * The gate before a saga step (SPEC §1 applied to a step): the acting agent's
 * current ring and σ_eff against the ring the action requires.
 *
 * Consensus and an SRE witness are per step. Consensus lifts an agent in
 * ring 2 whose σ_eff > 0.95 into ring 1 for that step (ring 1 is "σ_eff > 0.95
 * and consensus"); a witness co-sign lets an agent in ring 1 or 2 run a ring 0
 * step. An agent forced into ring 3 (sandbox) is never lifted.
 */
import type { Ring } from './common';
import { checkRing, requiredRing, ringFromSigma, type ActionCheckResult, type RingRelevantAction } from './rings';

/** What a step needs before its check can pass: nothing, approvals, or a witness. */
export type GateWait = 'none' | 'consensus' | 'witness';

export interface GateInput {
  agent: { ring: Ring; sigmaEff: number; active: boolean } | undefined;
  /** The action as registered in the session; undefined for an action nobody declared. */
  action: RingRelevantAction | undefined;
  hasConsensus: boolean;
  hasSreWitness: boolean;
}

/** An action nobody declared is treated as a write that cannot be undone (ω of NONE, ring 1). */
export const UNDECLARED_ACTION: RingRelevantAction = { readOnly: false, admin: false, reversibility: 'NONE' };

export function gateStep(input: GateInput): ActionCheckResult & { waitFor: GateWait } {
  const action = input.action ?? UNDECLARED_ACTION;
  const required = requiredRing(action);
  const agent = input.agent;
  if (!agent || !agent.active) {
    return {
      allowed: false, requiredRing: required, agentRing: 3, sigmaEff: agent?.sigmaEff ?? 0,
      reason: 'the agent is not an active participant of the session',
      requiresConsensus: required === 1, requiresSreWitness: required === 0, waitFor: 'none',
    };
  }
  let ring = agent.ring;
  if (required === 1 && input.hasConsensus && ring === 2) ring = ringFromSigma(agent.sigmaEff, true);
  if (required === 0 && input.hasSreWitness && ring <= 2) ring = 0;
  const result = checkRing(required, ring, agent.sigmaEff, input.hasConsensus, input.hasSreWitness);
  let waitFor: GateWait = 'none';
  // Wait only when the missing co-sign is the sole obstacle; any other failure denies at once.
  if (!result.allowed && required === 1 && !input.hasConsensus && agent.sigmaEff > 0.95 && agent.ring <= 2) waitFor = 'consensus';
  if (!result.allowed && required === 0 && !input.hasSreWitness && agent.ring <= 2) waitFor = 'witness';
  return { ...result, agentRing: agent.ring, waitFor };
}
