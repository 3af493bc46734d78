/**
 * SPEC §9 — integrations. Each adapter is optional and has a fallback. The
 * interfaces are implemented by Temporal activities; everything else here is
 * the pure mapping from their answers to governance decisions, plus the
 * caches (plain JSON, time passed in).
 */
import { z } from 'zod';
import {
  DidSchema,
  TimestampSchema,
  ownDelete,
  ownGet,
  ownGetOrSet,
  ownSet,
  parse,
  type Did,
  type Ring,
} from './common';
import { ActionDescriptorSchema, ActionIdSchema, type ActionDescriptor } from './reversibility';

// ── Trust scorer ("Nexus") ──────────────────────────────────────────────────

export type TrustTier = 'verified_partner' | 'trusted' | 'standard' | 'probationary' | 'untrusted';
export type ReportSeverity = 'low' | 'medium' | 'high' | 'critical';

/** External reputation service; implemented by an activity. */
export interface TrustScorer {
  /** Score in 0–1000. */
  score(did: Did): Promise<number>;
  reportSlash(did: Did, reason: string, severity: ReportSeverity): Promise<void>;
  reportOutcome(did: Did, outcome: { success: boolean; taskId?: string; detail?: string }): Promise<void>;
}

export const TRUST_CACHE_TTL_MS = 300_000;
/** σ when no scorer is configured. */
export const FALLBACK_SIGMA = 0.5;

export const TrustScoreSchema = z.number().min(0, 'score must be ≥ 0').max(1000, 'score must be ≤ 1000');

export function scoreToSigma(score: number): number {
  return parse(TrustScoreSchema, score, 'trust score') / 1000;
}

export function scoreTier(score: number): TrustTier {
  const s = parse(TrustScoreSchema, score, 'trust score');
  if (s >= 900) return 'verified_partner';
  if (s >= 700) return 'trusted';
  if (s >= 500) return 'standard';
  if (s >= 300) return 'probationary';
  return 'untrusted';
}

export interface TrustCacheEntry {
  score: number;
  sigma: number;
  tier: TrustTier;
  fetchedAt: number;
}

export interface TrustCache {
  ttlMs: number;
  byDid: Record<Did, TrustCacheEntry>;
}

export function createTrustCache(ttlMs: number = TRUST_CACHE_TTL_MS): TrustCache {
  return { ttlMs, byDid: {} };
}

/** Store a fresh score from the scorer; returns the cached entry. */
export function cacheTrustScore(cache: TrustCache, did: Did, score: number, now: number): TrustCacheEntry {
  const d = parse(DidSchema, did, 'agent DID');
  const entry: TrustCacheEntry = { score, sigma: scoreToSigma(score), tier: scoreTier(score), fetchedAt: now };
  ownSet(cache.byDid, d, entry);
  return entry;
}

/** The cached entry while younger than the TTL, else null (the caller asks the scorer). */
export function cachedTrust(cache: TrustCache, did: Did, now: number): TrustCacheEntry | null {
  const e = ownGet(cache.byDid, did);
  return e && now - e.fetchedAt < cache.ttlMs ? e : null;
}

/** Slash and task-outcome reports make the cached score stale. */
export function invalidateTrust(cache: TrustCache, did: Did): void {
  ownDelete(cache.byDid, did);
}

/**
 * σ for a DID: the fresh cached score if any; the fallback 0.50 when no scorer
 * is configured; null when the scorer must be asked.
 */
export function resolveSigma(cache: TrustCache, did: Did, now: number, hasScorer: boolean): number | null {
  if (!hasScorer) return FALLBACK_SIGMA;
  return cachedTrust(cache, did, now)?.sigma ?? null;
}

// ── Drift verifier ("CMVK") ─────────────────────────────────────────────────

/** External behavioural-drift service; implemented by an activity. Drift score in [0, 1]. */
export interface DriftVerifier {
  drift(input: {
    agentDid: Did;
    sessionId: string;
    claimed: unknown;
    observed: unknown;
    actionId?: string;
  }): Promise<number>;
}

export type DriftSeverity = 'none' | 'low' | 'medium' | 'high' | 'critical';
export type DriftAction = 'pass' | 'demote' | 'slash';

export const DRIFT_THRESHOLDS = { low: 0.15, medium: 0.3, high: 0.5, critical: 0.75 } as const;
/** ω used when drift triggers a slash. */
export const DRIFT_SLASH_OMEGA = 0.95;

export const DriftScoreSchema = z.number().min(0, 'drift must be ≥ 0').max(1, 'drift must be ≤ 1');

/** Thresholds are inclusive (≥); below `low` is none. */
export function driftSeverity(drift: number): DriftSeverity {
  if (drift >= DRIFT_THRESHOLDS.critical) return 'critical';
  if (drift >= DRIFT_THRESHOLDS.high) return 'high';
  if (drift >= DRIFT_THRESHOLDS.medium) return 'medium';
  if (drift >= DRIFT_THRESHOLDS.low) return 'low';
  return 'none';
}

export interface DriftDecision {
  drift: number;
  severity: DriftSeverity;
  action: DriftAction;
  passed: boolean;
  /** ω for the slash; null unless action is slash. */
  slashOmega: number | null;
  /** Severity to report to the trust scorer; null unless action is slash. */
  reportSeverity: 'critical' | 'high' | null;
}

/** HIGH/CRITICAL → slash (ω 0.95) and report; MEDIUM → demote; else pass. */
export function decideDrift(drift: number): DriftDecision {
  const d = parse(DriftScoreSchema, drift, 'drift score');
  const severity = driftSeverity(d);
  const slash = severity === 'high' || severity === 'critical';
  const action: DriftAction = slash ? 'slash' : severity === 'medium' ? 'demote' : 'pass';
  return {
    drift: d,
    severity,
    action,
    passed: action === 'pass',
    slashOmega: slash ? DRIFT_SLASH_OMEGA : null,
    reportSeverity: slash ? (d >= DRIFT_THRESHOLDS.critical ? 'critical' : 'high') : null,
  };
}

export interface DriftCheck {
  sessionId: string;
  drift: number;
  severity: DriftSeverity;
  action: DriftAction;
  at: number;
}

export interface AgentDriftHistory {
  checks: number;
  failures: number;
  driftSum: number;
  /** The most recent checks, newest last, at most DRIFT_HISTORY_LIMIT. */
  recent: DriftCheck[];
}

export const DRIFT_HISTORY_LIMIT = 50;

export interface DriftHistoryState {
  byDid: Record<Did, AgentDriftHistory>;
}

export function createDriftHistoryState(): DriftHistoryState {
  return { byDid: {} };
}

export const DriftCheckInputSchema = z.object({
  agentDid: DidSchema,
  sessionId: z.string().min(1),
  /** null when no verifier is configured: drift 0, passes. */
  drift: DriftScoreSchema.nullable(),
  now: TimestampSchema,
});
export type DriftCheckInput = z.input<typeof DriftCheckInputSchema>;

/** Decide on a drift reading and record it in the agent's history. */
export function recordDriftCheck(state: DriftHistoryState, input: DriftCheckInput): DriftDecision {
  const v = parse(DriftCheckInputSchema, input, 'drift check');
  const decision = decideDrift(v.drift ?? 0);
  const h = ownGetOrSet(state.byDid, v.agentDid, () => ({
    checks: 0,
    failures: 0,
    driftSum: 0,
    recent: [] as DriftCheck[],
  }));
  h.checks++;
  if (!decision.passed) h.failures++;
  h.driftSum += decision.drift;
  h.recent.push({
    sessionId: v.sessionId,
    drift: decision.drift,
    severity: decision.severity,
    action: decision.action,
    at: v.now,
  });
  if (h.recent.length > DRIFT_HISTORY_LIMIT) h.recent.shift();
  return decision;
}

/** Fraction of checks that did not pass; 0 with no checks. */
export function driftFailureRate(state: DriftHistoryState, did: Did): number {
  const h = ownGet(state.byDid, did);
  return h && h.checks > 0 ? h.failures / h.checks : 0;
}

export function meanDrift(state: DriftHistoryState, did: Did): number {
  const h = ownGet(state.byDid, did);
  return h && h.checks > 0 ? h.driftSum / h.checks : 0;
}

// ── Capability manifest ("IATP") ────────────────────────────────────────────

/** A manifest action is a full descriptor or a bare action id (then: a write of unknown reversibility, i.e. NONE). */
export const ManifestActionSchema = z.union([
  ActionIdSchema.transform((actionId) => ActionDescriptorSchema.parse({ actionId })),
  ActionDescriptorSchema,
]);

/** SPEC §11.6 bounds: at most 32 actions and 32 scopes, each string at most 200 characters. */
export const MANIFEST_MAX_ITEMS = 32;
export const MANIFEST_TEXT_MAX = 200;

export const IatpManifestSchema = z.object({
  agent_id: DidSchema,
  trust_level: z.string().max(MANIFEST_TEXT_MAX, `trust_level must be at most ${MANIFEST_TEXT_MAX} characters`),
  trust_score: z.number().min(0, 'trust_score must be ≥ 0').max(10, 'trust_score must be ≤ 10'),
  actions: z
    .array(ManifestActionSchema)
    .max(MANIFEST_MAX_ITEMS, `actions must hold at most ${MANIFEST_MAX_ITEMS} entries`)
    .default([]),
  scopes: z
    .array(z.string().max(MANIFEST_TEXT_MAX, `a scope must be at most ${MANIFEST_TEXT_MAX} characters`))
    .max(MANIFEST_MAX_ITEMS, `scopes must hold at most ${MANIFEST_MAX_ITEMS} entries`)
    .default([]),
});
export type IatpManifestInput = z.input<typeof IatpManifestSchema>;
export type IatpManifest = z.output<typeof IatpManifestSchema>;

export interface ManifestAnalysis {
  agentDid: Did;
  trustLevel: 'verified_partner' | 'trusted' | 'standard' | 'untrusted' | 'unknown';
  actions: ActionDescriptor[];
  scopes: string[];
  sigmaHint: number;
  ringHint: Ring;
}

const RING_HINTS: Record<string, Ring> = {
  verified_partner: 1,
  trusted: 2,
  standard: 2,
  untrusted: 3,
  unknown: 3,
};

export function analyzeManifestParsed(m: IatpManifest): ManifestAnalysis {
  const level = m.trust_level.trim().toLowerCase();
  const known = Object.hasOwn(RING_HINTS, level);
  return {
    agentDid: m.agent_id,
    trustLevel: (known ? level : 'unknown') as ManifestAnalysis['trustLevel'],
    actions: m.actions,
    scopes: m.scopes,
    sigmaHint: Math.min(1, Math.max(0, m.trust_score / 10)),
    ringHint: known ? (RING_HINTS[level] as Ring) : 3,
  };
}

/** Validate a manifest and derive actions, σ hint and ring hint (an unrecognised level counts as unknown). */
export function analyzeManifest(input: unknown): ManifestAnalysis {
  return analyzeManifestParsed(parse(IatpManifestSchema, input, 'capability manifest'));
}
