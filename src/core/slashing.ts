/**
 * SPEC §5 — slashing. The vouchee who violated intent is blacklisted (σ → 0);
 * each of its vouchers in the session is clipped, σ_new = max(0.05, σ_old × (1 − ω)),
 * and its bond released. A clipped voucher left at ≤ 0.06 that is itself
 * vouched for is slashed in turn.
 *
 * Depth: the original slash is depth 0; a voucher it pushes into a slash is
 * depth 1; that one's voucher depth 2. Slashes stop at depth 2 — a voucher
 * clipped by a depth-2 slash is clipped but never slashed.
 *
 * Scores: `scores` is the session's σ_raw by DID (plain JSON, owned by the
 * caller) and is updated in place.
 */
import { z } from 'zod';
import { DidSchema, TimestampSchema, ownGet, ownSet, parse, type Did } from './common';
import { HypervisorError } from './errors';
import { type LiabilityState, bondsBy, bondsFor, isVouchedFor, release } from './liability';

export const SLASH_FLOOR = 0.05;
export const CASCADE_THRESHOLD = 0.06;
export const MAX_CASCADE_DEPTH = 2;
/** Float slack so that a clip landing on 0.06 "exactly" (0.6 × 0.1) still cascades. */
const EPS = 1e-9;

export const SlashInputSchema = z.object({
  /** Id of the depth-0 slash; cascaded slashes get `${slashId}-1`, `${slashId}-2`, … */
  slashId: z.string().min(1),
  sessionId: z.string().min(1),
  vouchee: DidSchema,
  reason: z.string().min(1),
  /** Risk weight ω of the violated action (0.95 for drift). */
  omega: z.number().min(0, 'ω must be ≥ 0').max(1, 'ω must be ≤ 1'),
  now: TimestampSchema,
});
export type SlashInput = z.input<typeof SlashInputSchema>;

export interface VoucherClip {
  voucher: Did;
  before: number;
  after: number;
  omega: number;
  /** The voucher's bond for the slashed agent (the first, if it had several). */
  bondId: string;
  /** All of the voucher's bonds for the slashed agent, all released. */
  bondIds: string[];
}

export interface SlashRecord {
  slashId: string;
  sessionId: string;
  vouchee: Did;
  reason: string;
  depth: number;
  at: number;
  sigmaBefore: number;
  sigmaAfter: number;
  clips: VoucherClip[];
  /** Id of the slash that caused this one (null at depth 0). */
  causedBy: string | null;
  /** Bonds the slashed agent had put up for others, released because its collateral is gone. */
  forfeitedBonds: string[];
}

export interface SlashOutcome {
  slashes: SlashRecord[];
  /** Every agent whose σ or bonds changed, in first-touched order: re-evaluate their rings. */
  touched: Did[];
}

/** σ after a clip: max(0.05, σ × (1 − ω)). */
export function clipSigma(sigma: number, omega: number): number {
  return Math.max(SLASH_FLOOR, sigma * (1 - omega));
}

export function slash(
  liability: LiabilityState,
  scores: Record<Did, number>,
  input: Omit<SlashInput, 'now'>,
  now: number,
): SlashOutcome {
  const v = parse(SlashInputSchema, { ...input, now }, 'slash');
  const { sessionId, omega } = v;
  const first = ownGet(scores, v.vouchee);
  if (first === undefined) {
    throw new HypervisorError('AGENT_NOT_FOUND', `agent ${v.vouchee} has no score in session ${sessionId}`, {
      did: v.vouchee,
      sessionId,
    });
  }

  const slashes: SlashRecord[] = [];
  const touched: Did[] = [];
  const touchedSet = new Set<string>();
  const touch = (did: Did) => {
    if (!touchedSet.has(did)) {
      touchedSet.add(did);
      touched.push(did);
    }
  };
  const queued = new Set<string>([v.vouchee]);
  const queue: { did: Did; depth: number; causedBy: string | null }[] = [{ did: v.vouchee, depth: 0, causedBy: null }];

  for (let n = 0; n < queue.length; n++) {
    const job = queue[n] as (typeof queue)[number];
    const slashId = n === 0 ? v.slashId : `${v.slashId}-${n}`;
    const sigmaBefore = ownGet(scores, job.did) ?? 0;
    ownSet(scores, job.did, 0);
    touch(job.did);

    // Group the vouchers' bonds: one clip per voucher per slash.
    const byVoucher = new Map<string, string[]>();
    const order: Did[] = [];
    for (const b of bondsFor(liability, sessionId, job.did, now)) {
      let ids = byVoucher.get(b.voucher);
      if (!ids) {
        byVoucher.set(b.voucher, (ids = []));
        order.push(b.voucher);
      }
      ids.push(b.bondId);
    }

    const clips: VoucherClip[] = [];
    for (const voucher of order) {
      const bondIds = byVoucher.get(voucher) as string[];
      // A voucher outside the score table is clipped from the σ it bonded with.
      const before =
        ownGet(scores, voucher) ??
        (ownGet(liability.bonds, bondIds[0] as string) as { voucherSigma: number }).voucherSigma;
      const after = clipSigma(before, omega);
      ownSet(scores, voucher, after);
      for (const id of bondIds) release(liability, id, now, `slash ${slashId}: ${v.reason}`);
      clips.push({ voucher, before, after, omega, bondId: bondIds[0] as string, bondIds });
      touch(voucher);
      if (
        after <= CASCADE_THRESHOLD + EPS &&
        job.depth < MAX_CASCADE_DEPTH &&
        !queued.has(voucher) &&
        isVouchedFor(liability, sessionId, voucher, now)
      ) {
        queued.add(voucher);
        queue.push({ did: voucher, depth: job.depth + 1, causedBy: slashId });
      }
    }

    // A blacklisted agent's collateral is worthless: its own bonds for others go.
    const forfeitedBonds: string[] = [];
    for (const b of bondsBy(liability, sessionId, job.did, now)) {
      release(liability, b.bondId, now, `voucher ${job.did} slashed (${slashId})`);
      forfeitedBonds.push(b.bondId);
      touch(b.vouchee);
    }

    slashes.push({
      slashId,
      sessionId,
      vouchee: job.did,
      reason: v.reason,
      depth: job.depth,
      at: now,
      sigmaBefore,
      sigmaAfter: 0,
      clips,
      causedBy: job.causedBy,
      forfeitedBonds,
    });
  }
  return { slashes, touched };
}
