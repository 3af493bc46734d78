/**
 * SPEC §4 — joint liability: vouching bonds, σ_eff, exposure, release, and the
 * liability matrix. One LiabilityState holds the bonds of many sessions; each
 * session is independent (cycles and exposure are checked per session).
 *
 * Speed: bonds are indexed by `${sessionId}|${did}` for vouchees and vouchers,
 * so σ_eff and exposure cost O(that agent's bonds), never a scan of all bonds.
 * Released bonds leave the indexes (their records stay in `bonds`); expired
 * bonds stay indexed until released or pruned and are skipped on read.
 */
import { z } from 'zod';
import {
  DidSchema,
  SigmaSchema,
  TimestampSchema,
  isDid,
  isNonEmptyString,
  isSigma,
  isTimestamp,
  ownDelete,
  ownGet,
  ownGetOrSet,
  ownSet,
  parse,
  type Did,
} from './common';
import { HypervisorError } from './errors';

export const LiabilityConfigSchema = z.object({
  /** Fraction of the voucher's σ put up as a bond, when a vouch names none. */
  defaultBondPct: z.number().min(0).max(1).default(0.2),
  /** Σ active bonds of one voucher in one session ≤ voucher σ × this. */
  maxExposureRatio: z.number().min(0).max(1).default(0.8),
  /** A voucher needs at least this σ. */
  minVoucherSigma: SigmaSchema.default(0.5),
});
export type LiabilityConfig = z.output<typeof LiabilityConfigSchema>;

/** Absorbs float error so that "exactly at the limit" stays allowed. */
export const EXPOSURE_EPSILON = 1e-9;

export interface Bond {
  bondId: string;
  sessionId: string;
  voucher: Did;
  vouchee: Did;
  voucherSigma: number;
  bondPct: number;
  /** voucherSigma × bondPct. */
  amount: number;
  createdAt: number;
  /** The bond stops counting when expiresAt ≤ now. */
  expiresAt: number | null;
  releasedAt: number | null;
  releaseReason: string | null;
}

export interface LiabilityState {
  config: LiabilityConfig;
  /** Every bond ever made, released ones included. */
  bonds: Record<string, Bond>;
  /** `${sessionId}|${vouchee}` → ids of its unreleased bonds. */
  byVouchee: Record<string, string[]>;
  /** `${sessionId}|${voucher}` → ids of its unreleased bonds. */
  byVoucher: Record<string, string[]>;
  /** sessionId → ids of its unreleased bonds. */
  bySession: Record<string, string[]>;
}

export function createLiabilityState(config: z.input<typeof LiabilityConfigSchema> = {}): LiabilityState {
  return {
    config: parse(LiabilityConfigSchema, config, 'liability config'),
    bonds: {},
    byVouchee: {},
    byVoucher: {},
    bySession: {},
  };
}

/** DIDs cannot contain '|', so the key is unambiguous. */
export function agentKey(sessionId: string, did: string): string {
  return `${sessionId}|${did}`;
}

/** Active = not released and not expired at `now`. */
export function isActive(bond: Bond, now: number): boolean {
  return bond.releasedAt === null && (bond.expiresAt === null || bond.expiresAt > now);
}

const EMPTY: readonly string[] = [];

function activeIn(state: LiabilityState, ids: readonly string[] | undefined, now: number): Bond[] {
  const out: Bond[] = [];
  for (const id of ids ?? EMPTY) {
    const b = ownGet(state.bonds, id);
    if (b && isActive(b, now)) out.push(b);
  }
  return out;
}

/** Active bonds in which `vouchee` is vouched for, in this session. */
export function bondsFor(state: LiabilityState, sessionId: string, vouchee: Did, now: number): Bond[] {
  return activeIn(state, ownGet(state.byVouchee, agentKey(sessionId, vouchee)), now);
}

/** Active bonds that `voucher` has put up, in this session. */
export function bondsBy(state: LiabilityState, sessionId: string, voucher: Did, now: number): Bond[] {
  return activeIn(state, ownGet(state.byVoucher, agentKey(sessionId, voucher)), now);
}

/** True when someone actively vouches for `did` in this session. */
export function isVouchedFor(state: LiabilityState, sessionId: string, did: Did, now: number): boolean {
  for (const id of ownGet(state.byVouchee, agentKey(sessionId, did)) ?? EMPTY) {
    const b = ownGet(state.bonds, id);
    if (b && isActive(b, now)) return true;
  }
  return false;
}

function sumActive(state: LiabilityState, ids: readonly string[] | undefined, now: number): number {
  let sum = 0;
  for (const id of ids ?? EMPTY) {
    const b = ownGet(state.bonds, id);
    if (b && isActive(b, now)) sum += b.amount;
  }
  return sum;
}

/** Σ active bonds of a voucher in one session. No validation (hot path). */
export function exposureOf(state: LiabilityState, sessionId: string, voucher: Did, now: number): number {
  return sumActive(state, ownGet(state.byVoucher, agentKey(sessionId, voucher)), now);
}

/** σ_eff = min(1, σ + ω × Σ active unexpired bonds for the vouchee). No validation (hot path). */
export function sigmaEffUnchecked(
  state: LiabilityState,
  sessionId: string,
  vouchee: Did,
  sigmaRaw: number,
  omega: number,
  now: number,
): number {
  return Math.min(1, sigmaRaw + omega * bondTotalFor(state, sessionId, vouchee, now));
}

/** Σ amount of the active, unexpired bonds for `vouchee` in this session. No validation (hot path). */
export function bondTotalFor(state: LiabilityState, sessionId: string, vouchee: Did, now: number): number {
  return sumActive(state, ownGet(state.byVouchee, agentKey(sessionId, vouchee)), now);
}

/**
 * The earliest expiresAt > now among the session's unreleased bonds, or null:
 * when σ_eff next changes by itself (SPEC §1: a durable timer for it).
 */
export function nextBondExpiry(state: LiabilityState, sessionId: string, now: number): number | null {
  let next: number | null = null;
  for (const id of ownGet(state.bySession, sessionId) ?? EMPTY) {
    const b = ownGet(state.bonds, id);
    if (!b || b.releasedAt !== null || b.expiresAt === null || b.expiresAt <= now) continue;
    if (next === null || b.expiresAt < next) next = b.expiresAt;
  }
  return next;
}

export const SigmaEffInputSchema = z.object({
  sessionId: z.string().min(1),
  vouchee: DidSchema,
  sigmaRaw: SigmaSchema,
  omega: z.number().min(0, 'ω must be ≥ 0').max(1, 'ω must be ≤ 1'),
  now: TimestampSchema,
});

/** Validated σ_eff of a vouchee in a session for an action of risk weight ω. */
export function sigmaEff(
  state: LiabilityState,
  sessionId: string,
  vouchee: Did,
  sigmaRaw: number,
  omega: number,
  now: number,
): number {
  // Fast accept (see common.ts); zod names what is wrong otherwise.
  if (!(isNonEmptyString(sessionId) && isDid(vouchee) && isSigma(sigmaRaw) && isSigma(omega) && isTimestamp(now))) {
    parse(SigmaEffInputSchema, { sessionId, vouchee, sigmaRaw, omega, now }, 'σ_eff input');
  }
  return sigmaEffUnchecked(state, sessionId, vouchee, sigmaRaw, omega, now);
}

/** True when `to` can be reached from `from` along active "vouches for" edges. */
function reaches(state: LiabilityState, sessionId: string, from: Did, to: Did, now: number): boolean {
  const seen = new Set<string>([from]);
  const stack: string[] = [from];
  while (stack.length > 0) {
    const at = stack.pop() as string;
    for (const b of bondsBy(state, sessionId, at, now)) {
      if (b.vouchee === to) return true;
      if (!seen.has(b.vouchee)) {
        seen.add(b.vouchee);
        stack.push(b.vouchee);
      }
    }
  }
  return false;
}

export const VouchInputSchema = z.object({
  sessionId: z.string().min(1),
  voucher: DidSchema,
  vouchee: DidSchema,
  voucherSigma: SigmaSchema,
  /** Clamped to [0, 1]; the config's default (0.20) when absent. */
  bondPct: z.number().finite().optional(),
  expiresAt: TimestampSchema.nullable().optional(),
});
export type VouchInput = z.input<typeof VouchInputSchema>;

const VouchCallSchema = z.object({ bondId: z.string().min(1), now: TimestampSchema });

/**
 * A voucher bonds a fraction of its σ for a vouchee in one session. Checks, in
 * order: self-vouch, voucher σ, cycle, exposure. A rejection changes nothing.
 */
export function vouch(state: LiabilityState, input: VouchInput, now: number, bondId: string): Bond {
  const v = parse(VouchInputSchema, input, 'vouch');
  if (!(isNonEmptyString(bondId) && isTimestamp(now))) parse(VouchCallSchema, { bondId, now }, 'vouch');
  const { sessionId, voucher, vouchee, voucherSigma } = v;
  const cfg = state.config;

  if (ownGet(state.bonds, bondId))
    throw new HypervisorError('DUPLICATE_BOND', `bond ${bondId} already exists`, { bondId });
  if (v.expiresAt != null && v.expiresAt <= now) {
    throw new HypervisorError('INVALID_INPUT', `invalid vouch: expiresAt: ${v.expiresAt} is not after now (${now})`);
  }
  if (voucher === vouchee) {
    throw new HypervisorError('SELF_VOUCH', `agent ${voucher} cannot vouch for itself in session ${sessionId}`, {
      voucher,
      sessionId,
    });
  }
  if (voucherSigma < cfg.minVoucherSigma) {
    throw new HypervisorError(
      'VOUCHER_SIGMA_TOO_LOW',
      `voucher ${voucher} has σ ${voucherSigma}, below the ${cfg.minVoucherSigma} needed to vouch`,
      { voucher, voucherSigma, min: cfg.minVoucherSigma },
    );
  }
  // The new edge voucher → vouchee closes a cycle iff voucher is already reachable from vouchee.
  if (reaches(state, sessionId, vouchee, voucher, now)) {
    throw new HypervisorError(
      'VOUCH_CYCLE',
      `vouch ${voucher} → ${vouchee} would close a vouching cycle in session ${sessionId}`,
      { voucher, vouchee, sessionId },
    );
  }
  const bondPct = Math.min(1, Math.max(0, v.bondPct ?? cfg.defaultBondPct));
  const amount = voucherSigma * bondPct;
  const exposure = exposureOf(state, sessionId, voucher, now);
  const limit = voucherSigma * cfg.maxExposureRatio;
  if (exposure + amount > limit + EXPOSURE_EPSILON) {
    throw new HypervisorError(
      'EXPOSURE_LIMIT',
      `voucher ${voucher} would have exposure ${exposure + amount} in session ${sessionId}, over its limit ${limit}`,
      { voucher, sessionId, exposure, amount, limit },
    );
  }

  const bond: Bond = {
    bondId,
    sessionId,
    voucher,
    vouchee,
    voucherSigma,
    bondPct,
    amount,
    createdAt: now,
    expiresAt: v.expiresAt ?? null,
    releasedAt: null,
    releaseReason: null,
  };
  ownSet(state.bonds, bondId, bond);
  ownGetOrSet(state.byVouchee, agentKey(sessionId, vouchee), newList).push(bondId);
  ownGetOrSet(state.byVoucher, agentKey(sessionId, voucher), newList).push(bondId);
  ownGetOrSet(state.bySession, sessionId, newList).push(bondId);
  return bond;
}

const newList = (): string[] => [];

function unindex(index: Record<string, string[]>, key: string, bondId: string): void {
  const ids = ownGet(index, key);
  if (!ids) return;
  const i = ids.indexOf(bondId);
  if (i >= 0) ids.splice(i, 1);
  if (ids.length === 0) ownDelete(index, key);
}

function markReleased(bond: Bond, at: number, reason: string): void {
  bond.releasedAt = at;
  bond.releaseReason = reason;
}

/** Release one bond. Idempotent: an already released bond is returned unchanged. */
export function release(state: LiabilityState, bondId: string, now: number, reason: string): Bond {
  const bond = ownGet(state.bonds, bondId);
  if (!bond) throw new HypervisorError('BOND_NOT_FOUND', `bond ${bondId} does not exist`, { bondId });
  if (bond.releasedAt !== null) return bond;
  markReleased(bond, now, reason);
  unindex(state.byVouchee, agentKey(bond.sessionId, bond.vouchee), bondId);
  unindex(state.byVoucher, agentKey(bond.sessionId, bond.voucher), bondId);
  unindex(state.bySession, bond.sessionId, bondId);
  return bond;
}

/** Terminating a session releases all its bonds. Returns the released bond ids. */
export function releaseSession(
  state: LiabilityState,
  sessionId: string,
  now: number,
  reason = 'session terminated',
): string[] {
  const ids = ownGet(state.bySession, sessionId);
  if (ids === undefined) return []; // nothing to release (and no keyed delete, which is slow in V8)
  for (const id of ids) {
    const b = ownGet(state.bonds, id);
    if (!b) continue;
    markReleased(b, now, reason);
    ownDelete(state.byVouchee, agentKey(sessionId, b.vouchee));
    ownDelete(state.byVoucher, agentKey(sessionId, b.voucher));
  }
  ownDelete(state.bySession, sessionId);
  return ids;
}

/**
 * Release the session's expired bonds (releasedAt = their expiry), so the
 * indexes stay short. Reads never need this: they skip expired bonds anyway.
 */
export function pruneExpired(state: LiabilityState, sessionId: string, now: number): string[] {
  const pruned: string[] = [];
  for (const id of [...(ownGet(state.bySession, sessionId) ?? EMPTY)]) {
    const b = ownGet(state.bonds, id);
    if (b && b.expiresAt !== null && b.expiresAt <= now) {
      release(state, id, b.expiresAt, 'expired');
      pruned.push(id);
    }
  }
  return pruned;
}

/** Active bonds of a session. O(session's bonds). */
export function sessionBonds(state: LiabilityState, sessionId: string, now: number): Bond[] {
  return activeIn(state, ownGet(state.bySession, sessionId), now);
}

export interface LiabilityMatrix {
  sessionId: string;
  bonds: { bondId: string; voucher: Did; vouchee: Did; amount: number; expiresAt: number | null }[];
  /** voucher → the agents it vouches for. */
  vouchesFor: Record<Did, Did[]>;
  /** voucher → Σ of its active bonds. */
  exposure: Record<Did, number>;
  /**
   * Who a slash would reach: each path starts at a vouched-for agent and climbs
   * to its voucher and, if that voucher is itself vouched for, to the voucher's
   * voucher — at most 2 edges. Only maximal paths are listed.
   */
  cascadePaths: Did[][];
  hasCycle: boolean;
}

/** The session's liability picture: who vouches for whom, exposure, cascade paths, cycle check. */
export function liabilityMatrix(state: LiabilityState, sessionId: string, now: number): LiabilityMatrix {
  const active = sessionBonds(state, sessionId, now);
  const vouchesFor: Record<Did, Did[]> = {};
  const vouchedBy: Record<Did, Did[]> = {};
  const exposure: Record<Did, number> = {};
  for (const b of active) {
    const to = ownGetOrSet(vouchesFor, b.voucher, newList);
    if (!to.includes(b.vouchee)) to.push(b.vouchee);
    const by = ownGetOrSet(vouchedBy, b.vouchee, newList);
    if (!by.includes(b.voucher)) by.push(b.voucher);
    ownSet(exposure, b.voucher, (ownGet(exposure, b.voucher) ?? 0) + b.amount);
  }
  const cascadePaths: Did[][] = [];
  for (const [vouchee, vouchers] of Object.entries(vouchedBy)) {
    for (const v1 of vouchers) {
      const up = ownGet(vouchedBy, v1);
      if (up && up.length > 0) for (const v2 of up) cascadePaths.push([vouchee, v1, v2]);
      else cascadePaths.push([vouchee, v1]);
    }
  }
  return {
    sessionId,
    bonds: active.map((b) => ({
      bondId: b.bondId,
      voucher: b.voucher,
      vouchee: b.vouchee,
      amount: b.amount,
      expiresAt: b.expiresAt,
    })),
    vouchesFor,
    exposure,
    cascadePaths,
    hasCycle: hasCycle(vouchesFor),
  };
}

/** Cycle check over an adjacency list (iterative three-colour DFS). */
export function hasCycle(edges: Record<string, string[]>): boolean {
  const colour = new Map<string, 1 | 2>(); // 1 = on the stack, 2 = done
  for (const start of Object.keys(edges)) {
    if (colour.has(start)) continue;
    const stack: [string, number][] = [[start, 0]];
    colour.set(start, 1);
    while (stack.length > 0) {
      const top = stack[stack.length - 1] as [string, number];
      const next = ownGet(edges, top[0])?.[top[1]];
      if (next === undefined) {
        colour.set(top[0], 2);
        stack.pop();
        continue;
      }
      top[1]++;
      const c = colour.get(next);
      if (c === 1) return true;
      if (c === undefined) {
        colour.set(next, 1);
        stack.push([next, 0]);
      }
    }
  }
  return false;
}
