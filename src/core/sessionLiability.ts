/**
 * Liability within one session (SPEC §4–§5): a bond between two participants,
 * the σ scores a slash reads, and a slash with its cascade to the vouchers —
 * each returning the ring changes the session then applies.
 */
import { DidSchema, ownGet, ownSet, parse, type Did } from './common';
import { HypervisorError } from './errors';
import { type LiabilityState, vouch, type Bond, type VouchInput } from './liability';
import { slash, type SlashInput, type SlashOutcome } from './slashing';
import { JOINABLE, participantOf, requireParticipant, type SessionState } from './session';
import { refreshRings, type RingChange } from './sessionRings';

export type SessionVouchInput = Omit<VouchInput, 'sessionId' | 'voucherSigma'>;

/**
 * A participant vouches for another; the bond is taken on the voucher's σ_raw.
 * The vouchee's ring is re-evaluated (the bond may lift it).
 */
export function vouchInSession(
  s: SessionState,
  liability: LiabilityState,
  input: SessionVouchInput,
  now: number,
  bondId: string,
): { bond: Bond; ringChanges: RingChange[] } {
  if (!JOINABLE.includes(s.state)) {
    throw new HypervisorError('INVALID_TRANSITION', `cannot vouch in session ${s.sessionId} in state ${s.state}`, {
      sessionId: s.sessionId,
      state: s.state,
    });
  }
  const voucherDid = parse(DidSchema, input?.voucher, 'vouch voucher');
  const voucheeDid = parse(DidSchema, input?.vouchee, 'vouch vouchee');
  const voucher = requireParticipant(s, voucherDid);
  const vouchee = requireParticipant(s, voucheeDid);
  if (vouchee.slashed) {
    throw new HypervisorError(
      'AGENT_SLASHED',
      `agent ${voucheeDid} was slashed in session ${s.sessionId} and cannot be vouched for again`,
      { did: voucheeDid, sessionId: s.sessionId },
    );
  }
  const bond = vouch(liability, { ...input, sessionId: s.sessionId, voucherSigma: voucher.sigmaRaw }, now, bondId);
  return { bond, ringChanges: refreshRings(s, liability, now, [voucheeDid]) };
}

/** σ_raw of the session's participants, as the slashing engine reads and writes it. */
export function scoresOf(s: SessionState): Record<Did, number> {
  const scores: Record<Did, number> = {};
  for (const [did, p] of Object.entries(s.participants)) ownSet(scores, did, p.sigmaRaw);
  return scores;
}

/**
 * Slash a participant: run the slash on the participants' σ_raw, write the
 * new scores back, and re-evaluate the rings of everyone it touched.
 */
export function slashInSession(
  s: SessionState,
  liability: LiabilityState,
  input: Omit<SlashInput, 'sessionId' | 'now'>,
  now: number,
): { outcome: SlashOutcome; ringChanges: RingChange[] } {
  const scores = scoresOf(s);
  const outcome = slash(liability, scores, { ...input, sessionId: s.sessionId }, now);
  for (const did of outcome.touched) {
    const p = participantOf(s, did);
    const score = ownGet(scores, did);
    if (p && score !== undefined) p.sigmaRaw = score;
  }
  for (const r of outcome.slashes) {
    const p = participantOf(s, r.vouchee);
    if (p) p.slashed = true;
  }
  return { outcome, ringChanges: refreshRings(s, liability, now, outcome.touched) };
}
