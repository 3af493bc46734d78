/**
 * SPEC §3's handshake: join — the declared actions (one path, whatever their
 * source: the join's own list or its manifest's), the transaction history, σ
 * and the ring — in SPEC order. Rejections leave the session unchanged.
 */
import { z } from 'zod';
import {
  DidSchema,
  SigmaSchema,
  fastPaths,
  isDid,
  isRecord,
  isSigma,
  ownGet,
  ownSet,
  parse,
  parseTimestamp,
  type Did,
  type Ring,
} from './common';
import { HypervisorError } from './errors';
import { isMcpRef } from './mcp';
import { IatpManifestSchema, analyzeManifestParsed, FALLBACK_SIGMA, type IatpManifest } from './adapters';
import { type HistoryStatus, TransactionHistorySchema, verifyHistory } from './history';
import { type LiabilityState, sigmaEffUnchecked } from './liability';
import {
  ActionDescriptorSchema,
  type ActionDescriptor,
  type ReversibilityEntry,
  declarationDifferences,
  entryOf,
  hasNonReversibleActions,
  previewEntry,
  registerParsed,
  UNKNOWN_ACTION_OMEGA,
} from './reversibility';
import { ringFromSigma } from './rings';
import { JOINABLE, MAX_JOIN_ACTIONS, participantOf, type Consistency, type SessionState } from './session';

export const JoinInputSchema = z.object({
  agentDid: DidSchema,
  /** Explicit σ_raw. */
  sigmaRaw: SigmaSchema.optional().describe(
    `σ_raw in [0, 1]. Absent: the trust scorer's σ, else the manifest's trust score ÷ 10, else ${FALLBACK_SIGMA}; given with a scorer's σ, the lower of the two`,
  ),
  /** σ from the trust scorer, fetched by the caller (an activity). */
  scoredSigma: SigmaSchema.optional(),
  actions: z
    .array(ActionDescriptorSchema)
    .max(MAX_JOIN_ACTIONS, `actions must hold at most ${MAX_JOIN_ACTIONS} declarations`)
    .optional(),
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

/**
 * JoinInputSchema's result for a plainly valid join that declares no actions,
 * manifest or history (those are left to zod, as is anything invalid). See
 * "Fast accept paths" in common.ts.
 */
export function fastJoinInput(input: unknown): z.output<typeof JoinInputSchema> | undefined {
  if (!isRecord(input)) return undefined;
  const { agentDid, sigmaRaw, scoredSigma } = input;
  if (
    !isDid(agentDid) ||
    (sigmaRaw !== undefined && !isSigma(sigmaRaw)) ||
    (scoredSigma !== undefined && !isSigma(scoredSigma))
  )
    return undefined;
  if (input.actions !== undefined || input.manifest !== undefined || input.history !== undefined) return undefined;
  const v: z.output<typeof JoinInputSchema> = { agentDid };
  // Optional fields: a present key (even undefined) is kept, as zod does.
  if ('sigmaRaw' in input) v.sigmaRaw = sigmaRaw;
  if ('scoredSigma' in input) v.scoredSigma = scoredSigma;
  for (const key of ['actions', 'manifest', 'history'] as const) if (key in input) v[key] = undefined;
  return v;
}

/**
 * The actions a join declares (SPEC §3 step 1): its own list, else its
 * manifest's. Every rule about declarations reads this, whatever the source.
 */
export function declaredActions(v: {
  actions?: readonly ActionDescriptor[];
  manifest?: IatpManifest;
}): readonly ActionDescriptor[] {
  return v.actions && v.actions.length > 0 ? v.actions : (v.manifest?.actions ?? []);
}

/** How declarations are judged: sessions recorded before SPEC §11.8 replay by the older rule. */
export interface DeclarationRules {
  /**
   * SPEC §11.8 (issue 24 N10): the first declaration of an action in a session is fixed — a later one that
   * differs in anything (executor, undo, reversibility, ω, cost, undo window) is refused (default). False:
   * only a rebinding of its executor is refused, and the stricter of two declarations is kept (a history
   * recorded before the rule, behind the patch `declarations-fixed`).
   */
  firstFixed?: boolean;
}

/**
 * SPEC §11.4, §11.8: a declared HTTP tool must be at an origin the session
 * allows, and an action keeps what was first declared for it (a later join
 * cannot rebind it, nor change its cost, ω or undo window). Within one join,
 * an action declared twice is held to its first declaration too. `where`
 * names the field in errors ("actions" or "manifest.actions").
 */
export function checkDeclarations(
  s: SessionState,
  actions: readonly ActionDescriptor[],
  where: string,
  rules: DeclarationRules = {},
): void {
  const firstFixed = rules.firstFixed !== false;
  const earlier = new Map<string, ReversibilityEntry>();
  actions.forEach((a, i) => {
    const declared = ownGet(s.registry.entries, a.actionId);
    if (declared && (declared.executeApi !== (a.executeApi ?? null) || declared.undoApi !== (a.undoApi ?? null))) {
      throw new HypervisorError(
        'INVALID_INPUT',
        `invalid join: ${where}.${i}: action ${declared.actionId} is already declared in session ${s.sessionId} with executeApi ${declared.executeApi ?? 'none'} and undoApi ${declared.undoApi ?? 'none'}; a later join cannot rebind it`,
      );
    }
    const first = declared ?? earlier.get(a.actionId);
    if (firstFixed && first) {
      const differs = declarationDifferences(first, a);
      if (differs.length > 0) {
        const was = differs.map((k) => `${k} ${JSON.stringify(first[k] ?? null)}`).join(', ');
        throw new HypervisorError(
          'INVALID_INPUT',
          `invalid join: ${where}.${i}: action ${a.actionId} is already declared ${declared ? `in session ${s.sessionId}` : `earlier in this join`} with ${was}; the first declaration of an action is fixed (SPEC §11.8): declare it the same or not at all`,
          { actionId: a.actionId, fields: differs },
        );
      }
    }
    if (!earlier.has(a.actionId)) earlier.set(a.actionId, entryOf(a));
    for (const key of ['executeApi', 'undoApi'] as const) {
      const api = a[key];
      // An MCP tool runs at a server the worker's operator configured (HV_MCP_SERVERS), not at a session-allowed origin.
      if (!api || api.startsWith('handler:') || isMcpRef(api)) continue;
      const origin = new URL(api).origin;
      if (!s.config.allowedToolOrigins.includes(origin)) {
        throw new HypervisorError(
          'TOOL_ORIGIN_NOT_ALLOWED',
          `invalid join: ${where}.${i}.${key}: origin ${origin} is not in session ${s.sessionId}'s config.allowedToolOrigins`,
          { origin },
        );
      }
    }
  });
}

/** Where a join's declarations come from, for errors. */
export const declarationSource = (v: { actions?: readonly unknown[] }) =>
  v.actions && v.actions.length > 0 ? 'actions' : 'manifest.actions';

/** The join handshake, in SPEC order. Rejections leave the session unchanged. */
export function join(
  s: SessionState,
  liability: LiabilityState,
  input: JoinInput,
  now: number,
  rules: DeclarationRules = {},
): JoinResult {
  const v = (fastPaths.join ? fastJoinInput(input) : undefined) ?? parse(JoinInputSchema, input, 'join');
  parseTimestamp(now, 'now');
  const did = v.agentDid;
  if (!JOINABLE.includes(s.state)) {
    throw new HypervisorError(
      'INVALID_TRANSITION',
      `cannot join session ${s.sessionId} in state ${s.state}; join is allowed in ${JOINABLE.join(', ')}`,
      { sessionId: s.sessionId, state: s.state, allowed: JOINABLE },
    );
  }
  const existing = participantOf(s, did);
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
  const actions = declaredActions(v);
  checkDeclarations(s, actions, declarationSource(v), rules);
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
  ownSet(s.participants, did, {
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
    slashed: false,
    ringCap: 0,
  });
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
