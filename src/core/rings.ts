/**
 * SPEC §1 — execution rings: ring from σ_eff, the ring an action requires,
 * the ordered action check, demotion, and the action classifier.
 *
 * Thresholds are strict (`>`) everywhere [resolved]: σ_eff exactly 0.60 is
 * Sandbox, exactly 0.95 is at most Standard.
 */
import { z } from 'zod';
import { Ring, RingSchema, SigmaSchema, ownDelete, ownGet, ownGetOrSet, ownSet, parse } from './common';
import {
  ActionDescriptorSchema,
  ActionIdSchema,
  type ActionDescriptor,
  type ReversibilityLevel,
  omegaOf,
} from './reversibility';
import { RING1_SIGMA, RING2_SIGMA, ringFromSigma, requiredRing } from './ringRules';

export { RING1_SIGMA, RING2_SIGMA, ringFromSigma, requiredRing, type RingRelevantAction } from './ringRules';

/** Validated door for ringFromSigma. */
export function computeRing(sigmaEff: unknown, hasConsensus: unknown = false): Ring {
  const v = parse(RingInputSchema, { sigmaEff, hasConsensus }, 'ring input');
  return ringFromSigma(v.sigmaEff, v.hasConsensus);
}
export const RingInputSchema = z.object({ sigmaEff: SigmaSchema, hasConsensus: z.boolean() });

export interface ActionCheckResult {
  allowed: boolean;
  requiredRing: Ring;
  agentRing: Ring;
  sigmaEff: number;
  reason: string;
  /** The required ring needs consensus (ring 1). */
  requiresConsensus: boolean;
  /** The required ring needs an SRE witness co-sign (ring 0). */
  requiresSreWitness: boolean;
}

/**
 * The ordered check, first failure wins. Ring 0 also needs the agent to hold
 * ring 0 (the final ring comparison), which no score ever grants: admin
 * actions are reserved to the hypervisor's own root principal.
 */
export function checkRing(
  required: Ring,
  agentRing: Ring,
  sigmaEff: number,
  hasConsensus: boolean,
  hasSreWitness: boolean,
): ActionCheckResult {
  const r = (allowed: boolean, reason: string): ActionCheckResult => ({
    allowed,
    requiredRing: required,
    agentRing,
    sigmaEff,
    reason,
    requiresConsensus: required === 1,
    requiresSreWitness: required === 0,
  });
  if (required === 0 && !hasSreWitness) return r(false, 'ring 0 (Root) action requires an SRE witness co-sign');
  if (required === 1) {
    if (!(sigmaEff > RING1_SIGMA)) {
      return r(false, `ring 1 (Privileged) action requires σ_eff > ${RING1_SIGMA}; agent has ${sigmaEff}`);
    }
    if (!hasConsensus) return r(false, 'ring 1 (Privileged) action requires consensus');
  }
  if (required === 2 && !(sigmaEff > RING2_SIGMA)) {
    return r(false, `ring 2 (Standard) action requires σ_eff > ${RING2_SIGMA}; agent has ${sigmaEff}`);
  }
  if (agentRing > required) {
    return r(false, `agent in ring ${agentRing} may not run a ring ${required} action`);
  }
  return r(true, `allowed: agent in ring ${agentRing} meets ring ${required}`);
}

export const CheckActionInputSchema = z.object({
  action: ActionDescriptorSchema,
  agentRing: RingSchema,
  sigmaEff: SigmaSchema,
  hasConsensus: z.boolean().default(false),
  hasSreWitness: z.boolean().default(false),
});
export type CheckActionInput = z.input<typeof CheckActionInputSchema>;

/** Validated door: may this agent run this action? */
export function checkAction(input: CheckActionInput): ActionCheckResult {
  const v = parse(CheckActionInputSchema, input, 'action check');
  return checkRing(requiredRing(v.action), v.agentRing, v.sigmaEff, v.hasConsensus, v.hasSreWitness);
}

/** Demotion is immediate when the score's ring is a larger number than the current one. */
export function shouldDemote(currentRing: Ring, sigmaEff: number, hasConsensus: boolean): boolean {
  return ringFromSigma(sigmaEff, hasConsensus) > currentRing;
}

/** The ring to demote to, or null when no demotion is due. */
export function demotion(currentRing: Ring, sigmaEff: number, hasConsensus: boolean): Ring | null {
  const target = ringFromSigma(sigmaEff, hasConsensus);
  return target > currentRing ? target : null;
}

// ── Classifier ──────────────────────────────────────────────────────────────

export const CLASSIFIER_CONFIDENCE = 1.0;
export const OVERRIDE_CONFIDENCE = 0.9;

export interface Classification {
  actionId: string;
  ring: Ring;
  riskWeight: number;
  reversibility: ReversibilityLevel;
  /** 1.0 when derived from the descriptor, 0.9 when a session override applied. */
  confidence: number;
  overridden: boolean;
}

export interface ClassifierOverride {
  ring: Ring | null;
  riskWeight: number | null;
}

export interface ClassifierState {
  /** action id → classification derived from its descriptor (first one seen). */
  cache: Record<string, Classification>;
  /** session id → action id → override. */
  overrides: Record<string, Record<string, ClassifierOverride>>;
}

export function createClassifierState(): ClassifierState {
  return { cache: {}, overrides: {} };
}

export const ClassifierOverrideSchema = z
  .object({
    sessionId: z.string().min(1).max(256, 'sessionId must be at most 256 characters'),
    actionId: ActionIdSchema,
    ring: RingSchema.optional(),
    riskWeight: z.number().min(0).max(1).optional(),
  })
  .refine((o) => o.ring !== undefined || o.riskWeight !== undefined, {
    message: 'an override needs a ring or a riskWeight',
  });
export type ClassifierOverrideInput = z.input<typeof ClassifierOverrideSchema>;

/** Set (or replace) a session-level override for one action. */
export function setOverride(state: ClassifierState, input: ClassifierOverrideInput): ClassifierOverride {
  const v = parse(ClassifierOverrideSchema, input, 'classifier override');
  const o: ClassifierOverride = { ring: v.ring ?? null, riskWeight: v.riskWeight ?? null };
  ownSet(
    ownGetOrSet(state.overrides, v.sessionId, () => ({})),
    v.actionId,
    o,
  );
  return o;
}

export function clearOverrides(state: ClassifierState, sessionId: string): void {
  ownDelete(state.overrides, sessionId);
}

export function clearClassifierCache(state: ClassifierState): void {
  state.cache = {};
}

/**
 * Classify an action: the cached classification for its id (computed on first
 * sight), with the session's override, if any, taking precedence.
 */
export function classify(state: ClassifierState, action: unknown, sessionId?: string): Classification {
  const a: ActionDescriptor = parse(ActionDescriptorSchema, action, 'action descriptor');
  let base = ownGet(state.cache, a.actionId);
  if (!base) {
    base = {
      actionId: a.actionId,
      ring: requiredRing(a),
      riskWeight: omegaOf(a),
      reversibility: a.reversibility,
      confidence: CLASSIFIER_CONFIDENCE,
      overridden: false,
    };
    ownSet(state.cache, a.actionId, base);
  }
  const forSession = sessionId === undefined ? undefined : ownGet(state.overrides, sessionId);
  const o = forSession === undefined ? undefined : ownGet(forSession, a.actionId);
  if (!o) return { ...base };
  return {
    ...base,
    ring: o.ring ?? base.ring,
    riskWeight: o.riskWeight ?? base.riskWeight,
    confidence: OVERRIDE_CONFIDENCE,
    overridden: true,
  };
}
