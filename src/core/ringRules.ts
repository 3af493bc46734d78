/**
 * SPEC §1–§2, the arithmetic the gate runs on: ω per reversibility level, the ring an action requires and the
 * ring σ_eff earns. No schemas: a saga gates its steps with these, and every saga run evaluates the modules it
 * imports afresh (workflows/index.ts) — it does not build the join-time schemas of reversibility.ts and rings.ts,
 * which re-export these.
 */
import type { Ring } from './common';

export type ReversibilityLevel = 'FULL' | 'PARTIAL' | 'NONE';

/** ω range and default per level (SPEC §2 table). */
export const OMEGA: Record<ReversibilityLevel, { min: number; max: number; default: number }> = {
  FULL: { min: 0.1, max: 0.3, default: 0.2 },
  PARTIAL: { min: 0.5, max: 0.8, default: 0.65 },
  NONE: { min: 0.9, max: 1.0, default: 0.95 },
};

/** SPEC §1: admin → 0; not read-only and NONE → 1; read-only → 3; else 2. */
export function ringRequiredBy(action: {
  readOnly: boolean;
  admin: boolean;
  reversibility: ReversibilityLevel;
}): 0 | 1 | 2 | 3 {
  if (action.admin) return 0;
  if (!action.readOnly && action.reversibility === 'NONE') return 1;
  if (action.readOnly) return 3;
  return 2;
}

export const RING1_SIGMA = 0.95;
export const RING2_SIGMA = 0.6;

/** Hot path: no validation. `σ_eff > 0.95 && consensus → 1; σ_eff > 0.60 → 2; else 3`. */
export function ringFromSigma(sigmaEff: number, hasConsensus: boolean): Ring {
  if (sigmaEff > RING1_SIGMA && hasConsensus) return 1;
  if (sigmaEff > RING2_SIGMA) return 2;
  return 3;
}

/** The fields of an action that decide its ring. */
export interface RingRelevantAction {
  readOnly: boolean;
  admin: boolean;
  reversibility: ReversibilityLevel;
}

/** admin → 0; writes that cannot be undone → 1; read-only → 3; other writes → 2. */
export function requiredRing(action: RingRelevantAction): Ring {
  return ringRequiredBy(action);
}
