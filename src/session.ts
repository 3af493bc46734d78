/**
 * SPEC §3 (without VFS and audit) — session lifecycle, the join handshake,
 * leave, and ring re-evaluation after σ changes.
 *
 * Lifecycle: created → handshaking → active → terminating → archived.
 * Creation moves straight to handshaking. Join in handshaking|active.
 *
 * Choices where SPEC is silent:
 * - A participant who left stays in the record and may not rejoin (DUPLICATE_AGENT).
 * - maxParticipants counts active participants (a seat frees on leave).
 * - Leaving does not release bonds: liability outlives presence; terminate releases them.
 * - A rejected join changes nothing except the per-DID history cache.
 * - The ω in a participant's ring σ_eff is the highest ω among the actions it
 *   declared (what its vouchers underwrite — the same ω clips them on a slash),
 *   or ω of NONE (0.95) when it declared none, as for an unknown action.
 * - refreshRings recomputes every ring from σ_eff: demotions and promotions,
 *   but never a promotion into ring 1 (that needs consensus, which only an
 *   agent already in ring 1 is taken to hold) and never out of ring 3 while
 *   the history is untrustworthy.
 */
import { z } from 'zod';
import { DidSchema, SigmaSchema, isDid, isNonEmptyString, isRecord, isSigma, parse, parseTimestamp, type Did, type Ring } from './common';
import { HypervisorError } from './errors';
import { IatpManifestSchema, analyzeManifestParsed, FALLBACK_SIGMA } from './adapters';
import { type HistoryCache, type HistoryStatus, TransactionHistorySchema, createHistoryCache, isTrustworthy, verifyHistory } from './history';
import { type LiabilityState, releaseSession, sigmaEffUnchecked, vouch, type Bond, type VouchInput } from './liability';
import {
  ActionDescriptorSchema,
  type ReversibilityRegistry,
  createReversibilityRegistry,
  hasNonReversibleActions,
  previewEntry,
  registerParsed,
  UNKNOWN_ACTION_OMEGA,
} from './reversibility';
import { ringFromSigma } from './rings';
import { slash, type SlashInput, type SlashOutcome } from './slashing';

export const ConsistencySchema = z.enum(['EVENTUAL', 'STRONG']);
export type Consistency = z.infer<typeof ConsistencySchema>;

export const SessionConfigSchema = z.object({
  consistency: ConsistencySchema.default('EVENTUAL'),
  maxParticipants: z.number().int().positive().default(10),
  maxDurationSeconds: z.number().int().positive().default(3600),
  minSigmaEff: SigmaSchema.default(0.6),
  auditEnabled: z.boolean().default(true),
  externalCommitment: z.boolean().default(false),
});
export type SessionConfigInput = z.input<typeof SessionConfigSchema>;
export type SessionConfig = z.output<typeof SessionConfigSchema>;

export const SessionLifecycleSchema = z.enum(['created', 'handshaking', 'active', 'terminating', 'archived']);
export type SessionLifecycle = z.infer<typeof SessionLifecycleSchema>;

export const ALLOWED_TRANSITIONS: Record<SessionLifecycle, SessionLifecycle[]> = {
  created: ['handshaking'],
  handshaking: ['active', 'terminating'],
  active: ['terminating'],
  terminating: ['archived'],
  archived: [],
};

export interface Participant {
  did: Did;
  sigmaRaw: number;
  sigmaEff: number;
  /** ω used for this participant's σ_eff (see the module note). */
  riskWeight: number;
  ring: Ring;
  active: boolean;
  joinedAt: number;
  leftAt: number | null;
  historyStatus: HistoryStatus;
  /** Action ids it declared at join. */
  actions: string[];
}

export interface SessionState {
  sessionId: string;
  config: SessionConfig;
  state: SessionLifecycle;
  createdAt: number;
  activatedAt: number | null;
  terminatingAt: number | null;
  archivedAt: number | null;
  participants: Record<Did, Participant>;
  activeCount: number;
  registry: ReversibilityRegistry;
  historyCache: HistoryCache;
}

export const CreateSessionInputSchema = z.object({
  sessionId: z.string().min(1),
  config: SessionConfigSchema.default(SessionConfigSchema.parse({})),
});
export type CreateSessionInput = z.input<typeof CreateSessionInputSchema>;

/** Create a session; it moves straight from created to handshaking. */
export function createSessionState(input: CreateSessionInput, now: number): SessionState {
  const v = fastCreateSessionInput(input) ?? parse(CreateSessionInputSchema, input, 'session');
  parseTimestamp(now, 'now');
  const s: SessionState = {
    sessionId: v.sessionId,
    config: v.config,
    state: 'created',
    createdAt: now,
    activatedAt: null,
    terminatingAt: null,
    archivedAt: null,
    participants: {},
    activeCount: 0,
    registry: createReversibilityRegistry(),
    historyCache: createHistoryCache(),
  };
  transition(s, 'handshaking');
  return s;
}

const CONFIG_DEFAULTS: SessionConfig = SessionConfigSchema.parse({});

/**
 * CreateSessionInputSchema's result for a plainly valid input, else undefined
 * (then zod parses it and names what is wrong). See "Fast accept paths" in common.ts.
 */
export function fastCreateSessionInput(input: unknown): z.output<typeof CreateSessionInputSchema> | undefined {
  if (!isRecord(input) || !isNonEmptyString(input.sessionId)) return undefined;
  const config = input.config === undefined ? { ...CONFIG_DEFAULTS } : fastSessionConfig(input.config);
  return config && { sessionId: input.sessionId, config };
}

function fastSessionConfig(c: unknown): SessionConfig | undefined {
  if (!isRecord(c)) return undefined;
  const d = CONFIG_DEFAULTS;
  // zod's default() fills in only undefined (null is an error, left to zod).
  const consistency = c.consistency === undefined ? d.consistency : c.consistency;
  const maxParticipants = c.maxParticipants === undefined ? d.maxParticipants : c.maxParticipants;
  const maxDurationSeconds = c.maxDurationSeconds === undefined ? d.maxDurationSeconds : c.maxDurationSeconds;
  const minSigmaEff = c.minSigmaEff === undefined ? d.minSigmaEff : c.minSigmaEff;
  const auditEnabled = c.auditEnabled === undefined ? d.auditEnabled : c.auditEnabled;
  const externalCommitment = c.externalCommitment === undefined ? d.externalCommitment : c.externalCommitment;
  if (
    (consistency !== 'EVENTUAL' && consistency !== 'STRONG') ||
    !isPositiveSafeInt(maxParticipants) || !isPositiveSafeInt(maxDurationSeconds) || !isSigma(minSigmaEff) ||
    typeof auditEnabled !== 'boolean' || typeof externalCommitment !== 'boolean'
  ) {
    return undefined;
  }
  return { consistency, maxParticipants, maxDurationSeconds, minSigmaEff, auditEnabled, externalCommitment };
}

function isPositiveSafeInt(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x > 0;
}

function transitionError(s: SessionState, what: string, to: string): HypervisorError {
  const allowed = ALLOWED_TRANSITIONS[s.state];
  return new HypervisorError(
    'INVALID_TRANSITION',
    `cannot ${what} session ${s.sessionId} in state ${s.state} (→ ${to}); allowed from ${s.state}: ${allowed.length ? allowed.join(', ') : 'none'}`,
    { sessionId: s.sessionId, state: s.state, to, allowed },
  );
}

function transition(s: SessionState, to: SessionLifecycle): void {
  if (!ALLOWED_TRANSITIONS[s.state].includes(to)) throw transitionError(s, `move`, to);
  s.state = to;
}

function requireParticipant(s: SessionState, did: Did): Participant {
  const p = s.participants[did];
  if (!p || !p.active) {
    throw new HypervisorError('AGENT_NOT_FOUND', `agent ${did} is not an active participant of session ${s.sessionId}`, {
      did,
      sessionId: s.sessionId,
    });
  }
  return p;
}

// ── Join (the handshake) ────────────────────────────────────────────────────

export const JoinInputSchema = z.object({
  agentDid: DidSchema,
  /** Explicit σ_raw. */
  sigmaRaw: SigmaSchema.optional(),
  /** σ from the trust scorer, fetched by the caller (an activity). */
  scoredSigma: SigmaSchema.optional(),
  actions: z.array(ActionDescriptorSchema).optional(),
  manifest: IatpManifestSchema.optional(),
  history: TransactionHistorySchema.optional(),
});
export type JoinInput = z.input<typeof JoinInputSchema>;

export interface JoinResult {
  did: Did;
  ring: Ring;
  sigmaRaw: number;
  sigmaEff: number;
  historyStatus: HistoryStatus;
  consistency: Consistency;
  /** True when this join forced the session to STRONG consistency. */
  consistencyChanged: boolean;
}

const JOINABLE: SessionLifecycle[] = ['handshaking', 'active'];

/**
 * JoinInputSchema's result for a plainly valid join that declares no actions,
 * manifest or history (those are left to zod, as is anything invalid). See
 * "Fast accept paths" in common.ts.
 */
export function fastJoinInput(input: unknown): z.output<typeof JoinInputSchema> | undefined {
  if (!isRecord(input)) return undefined;
  const { agentDid, sigmaRaw, scoredSigma } = input;
  if (!isDid(agentDid) || (sigmaRaw !== undefined && !isSigma(sigmaRaw)) || (scoredSigma !== undefined && !isSigma(scoredSigma))) return undefined;
  if (input.actions !== undefined || input.manifest !== undefined || input.history !== undefined) return undefined;
  const v: z.output<typeof JoinInputSchema> = { agentDid };
  // Optional fields: a present key (even undefined) is kept, as zod does.
  if ('sigmaRaw' in input) v.sigmaRaw = sigmaRaw;
  if ('scoredSigma' in input) v.scoredSigma = scoredSigma;
  for (const key of ['actions', 'manifest', 'history'] as const) if (key in input) v[key] = undefined;
  return v;
}

/** The join handshake, in SPEC order. Rejections leave the session unchanged. */
export function join(s: SessionState, liability: LiabilityState, input: JoinInput, now: number): JoinResult {
  const v = fastJoinInput(input) ?? parse(JoinInputSchema, input, 'join');
  parseTimestamp(now, 'now');
  const did = v.agentDid;
  if (!JOINABLE.includes(s.state)) {
    throw new HypervisorError(
      'INVALID_TRANSITION',
      `cannot join session ${s.sessionId} in state ${s.state}; join is allowed in ${JOINABLE.join(', ')}`,
      { sessionId: s.sessionId, state: s.state, allowed: JOINABLE },
    );
  }
  const existing = s.participants[did];
  if (existing) {
    throw new HypervisorError(
      'DUPLICATE_AGENT',
      existing.active
        ? `agent ${did} is already in session ${s.sessionId}`
        : `agent ${did} already joined session ${s.sessionId} and left; it may not rejoin`,
      { did, sessionId: s.sessionId },
    );
  }
  if (s.activeCount >= s.config.maxParticipants) {
    throw new HypervisorError(
      'SESSION_FULL',
      `session ${s.sessionId} is full (${s.activeCount} of ${s.config.maxParticipants} participants)`,
      { sessionId: s.sessionId, max: s.config.maxParticipants },
    );
  }
  const manifest = v.manifest ? analyzeManifestParsed(v.manifest) : null;
  if (manifest && manifest.agentDid !== did) {
    throw new HypervisorError('INVALID_INPUT', `invalid join: manifest.agent_id ${manifest.agentDid} is not ${did}`);
  }

  // 1. declared actions (the manifest's when none are passed) — registered on success below.
  const actions = v.actions && v.actions.length > 0 ? v.actions : (manifest?.actions ?? []);
  // 3. transaction history (cached per DID).
  const verification = verifyHistory(s.historyCache, did, v.history ?? null, now);
  // 4. σ: explicit, else scored, else manifest hint, else fallback; the lower when explicit and scored both exist.
  const sigmaRaw =
    v.sigmaRaw !== undefined && v.scoredSigma !== undefined
      ? Math.min(v.sigmaRaw, v.scoredSigma)
      : (v.sigmaRaw ?? v.scoredSigma ?? manifest?.sigmaHint ?? FALLBACK_SIGMA);
  // ω as the registry will hold it once the actions are registered.
  let omega = actions.length === 0 ? UNKNOWN_ACTION_OMEGA : 0;
  for (const a of actions) omega = Math.max(omega, previewEntry(s.registry, a).riskWeight);
  const sigmaEff = sigmaEffUnchecked(liability, s.sessionId, did, sigmaRaw, omega, now);
  // 5. ring from σ_eff (no consensus at join); 6. untrustworthy history → sandbox.
  const ring: Ring = verification.trustworthy ? ringFromSigma(sigmaEff, false) : 3;
  if (sigmaEff < s.config.minSigmaEff && ring !== 3) {
    throw new HypervisorError(
      'SIGMA_TOO_LOW',
      `agent ${did} has σ_eff ${sigmaEff}, below session ${s.sessionId}'s minimum ${s.config.minSigmaEff} for ring ${ring}`,
      { did, sigmaEff, min: s.config.minSigmaEff, ring },
    );
  }

  // Commit: 1. register actions → 2. non-reversible forces STRONG → participant.
  for (const a of actions) registerParsed(s.registry, a);
  const before = s.config.consistency;
  if (hasNonReversibleActions(s.registry)) s.config.consistency = 'STRONG';
  s.participants[did] = {
    did,
    sigmaRaw,
    sigmaEff,
    riskWeight: omega,
    ring,
    active: true,
    joinedAt: now,
    leftAt: null,
    historyStatus: verification.status,
    actions: actions.map((a) => a.actionId),
  };
  s.activeCount++;
  return {
    did,
    ring,
    sigmaRaw,
    sigmaEff,
    historyStatus: verification.status,
    consistency: s.config.consistency,
    consistencyChanged: before !== s.config.consistency,
  };
}

// ── Leave and lifecycle ─────────────────────────────────────────────────────

/** Mark a participant inactive; it stays in the record. */
export function leave(s: SessionState, did: Did, now: number): Participant {
  const d = parse(DidSchema, did, 'agent DID');
  if (s.state === 'archived') throw transitionError(s, 'leave', 'archived');
  const p = requireParticipant(s, d);
  p.active = false;
  p.leftAt = now;
  s.activeCount--;
  return p;
}

/** handshaking → active; needs at least one (active) participant. */
export function activate(s: SessionState, now: number): void {
  if (!ALLOWED_TRANSITIONS[s.state].includes('active')) throw transitionError(s, 'activate', 'active');
  if (s.activeCount < 1) {
    throw new HypervisorError('INVALID_TRANSITION', `cannot activate session ${s.sessionId}: it has no participants`, {
      sessionId: s.sessionId,
      state: s.state,
    });
  }
  s.state = 'active';
  s.activatedAt = now;
}

/** active|handshaking → terminating; releases all the session's bonds. Returns their ids. */
export function beginTerminate(s: SessionState, liability: LiabilityState, now: number): string[] {
  if (!ALLOWED_TRANSITIONS[s.state].includes('terminating')) throw transitionError(s, 'terminate', 'terminating');
  s.state = 'terminating';
  s.terminatingAt = now;
  return releaseSession(liability, s.sessionId, now);
}

/** terminating → archived. */
export function archive(s: SessionState, now: number): void {
  if (!ALLOWED_TRANSITIONS[s.state].includes('archived')) throw transitionError(s, 'archive', 'archived');
  s.state = 'archived';
  s.archivedAt = now;
}

/** True once the session has run for maxDurationSeconds. */
export function isOverDuration(s: SessionState, now: number): boolean {
  return now - s.createdAt >= s.config.maxDurationSeconds * 1000;
}

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
export function refreshRings(s: SessionState, liability: LiabilityState, now: number, dids?: readonly Did[]): RingChange[] {
  const changes: RingChange[] = [];
  const list = dids ?? Object.keys(s.participants);
  for (const did of list) {
    const p = s.participants[did];
    if (!p || !p.active) continue;
    p.sigmaEff = sigmaEffUnchecked(liability, s.sessionId, did, p.sigmaRaw, p.riskWeight, now);
    const to: Ring = isTrustworthy(p.historyStatus) ? ringFromSigma(p.sigmaEff, p.ring === 1) : 3;
    if (to !== p.ring) {
      changes.push({ did, from: p.ring, to, kind: to > p.ring ? 'demotion' : 'promotion', sigmaEff: p.sigmaEff });
      p.ring = to;
    }
  }
  return changes;
}

// ── Liability within a session ──────────────────────────────────────────────

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
  requireParticipant(s, voucheeDid);
  const bond = vouch(liability, { ...input, sessionId: s.sessionId, voucherSigma: voucher.sigmaRaw }, now, bondId);
  return { bond, ringChanges: refreshRings(s, liability, now, [voucheeDid]) };
}

/** σ_raw of the session's participants, as the slashing engine reads and writes it. */
export function scoresOf(s: SessionState): Record<Did, number> {
  const scores: Record<Did, number> = {};
  for (const [did, p] of Object.entries(s.participants)) scores[did] = p.sigmaRaw;
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
    const p = s.participants[did];
    const score = scores[did];
    if (p && score !== undefined) p.sigmaRaw = score;
  }
  return { outcome, ringChanges: refreshRings(s, liability, now, outcome.touched) };
}
