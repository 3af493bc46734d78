/**
 * SPEC §3, §4: a session's rings re-evaluated after σ changes, SPEC §9's ring
 * cap, and the gate's view of an agent (σ_eff for any action's ω).
 *
 * refreshRings recomputes every ring from σ_eff: demotions and promotions, but
 * never a promotion into ring 1 (that needs consensus, which only an agent
 * already in ring 1 is taken to hold) and never out of ring 3 while the
 * history is untrustworthy.
 */
import { DidSchema, parse, type Did, type Ring } from './common';
import { HypervisorError } from './errors';
import { isTrustworthy } from './history';
import { type LiabilityState, bondTotalFor, sigmaEffUnchecked } from './liability';
import { ringFromSigma } from './rings';
import { participantOf, type SessionState } from './session';

// ── Ring re-evaluation ──────────────────────────────────────────────────────

export interface RingChange {
  did: Did;
  from: Ring;
  to: Ring;
  kind: 'demotion' | 'promotion';
  sigmaEff: number;
}

/**
 * Recompute σ_eff and ring of active participants (all, or just `dids`) and
 * apply the changes at once. See the module note for the promotion rule.
 */
export function refreshRings(
  s: SessionState,
  liability: LiabilityState,
  now: number,
  dids?: readonly Did[],
): RingChange[] {
  const changes: RingChange[] = [];
  const list = dids ?? Object.keys(s.participants);
  for (const did of list) {
    const p = participantOf(s, did);
    if (!p || !p.active) continue;
    p.sigmaEff = sigmaEffUnchecked(liability, s.sessionId, did, p.sigmaRaw, p.riskWeight, now);
    const computed: Ring = isTrustworthy(p.historyStatus) ? ringFromSigma(p.sigmaEff, p.ring === 1) : 3;
    const to = Math.max(computed, p.ringCap ?? 0) as Ring;
    if (to !== p.ring) {
      changes.push({ did, from: p.ring, to, kind: to > p.ring ? 'demotion' : 'promotion', sigmaEff: p.sigmaEff });
      p.ring = to;
    }
  }
  return changes;
}

/**
 * SPEC §9 MEDIUM drift: cap the agent one ring less privileged than it holds
 * now (or at `cap` when given), for the rest of the session: ringCap =
 * max(ringCap, cap ?? min(3, ring + 1)). The cap is applied at once and no
 * later σ change lifts the agent above it. Returns the ring change, if any.
 */
export function capRing(s: SessionState, did: Did, cap?: Ring): RingChange[] {
  const d = parse(DidSchema, did, 'agent DID');
  const p = participantOf(s, d);
  if (!p) {
    throw new HypervisorError('AGENT_NOT_FOUND', `agent ${d} is not a participant of session ${s.sessionId}`, {
      did: d,
      sessionId: s.sessionId,
    });
  }
  const floor = cap ?? (Math.min(3, p.ring + 1) as Ring);
  p.ringCap = Math.max(p.ringCap ?? 0, floor) as Ring;
  if (!p.active || p.ring >= p.ringCap) return [];
  const change: RingChange = { did: d, from: p.ring, to: p.ringCap, kind: 'demotion', sigmaEff: p.sigmaEff };
  p.ring = p.ringCap;
  return [change];
}

// ── The gate's view of an agent (SPEC §4: per-action ω) ─────────────────────

/** What the gate needs to compute σ_eff for any action's ω. */
export interface GateView {
  sigmaRaw: number;
  /** Σ amount of the active, unexpired bonds for the agent in this session. */
  bondSum: number;
  ringCap: Ring;
  active: boolean;
  slashed: boolean;
  historyTrustworthy: boolean;
}

/** The agent's gate view at `now`, or undefined when it never joined the session. */
export function gateView(s: SessionState, liability: LiabilityState, did: string, now: number): GateView | undefined {
  const p = participantOf(s, did);
  if (!p) return undefined;
  return {
    sigmaRaw: p.sigmaRaw,
    bondSum: bondTotalFor(liability, s.sessionId, p.did, now),
    ringCap: p.ringCap ?? 0,
    active: p.active,
    slashed: p.slashed ?? false,
    historyTrustworthy: isTrustworthy(p.historyStatus),
  };
}
