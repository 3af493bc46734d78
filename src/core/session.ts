/**
 * SPEC §3 (without VFS and audit) — session lifecycle, the join handshake's
 * state, and leave.
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
 *
 * Ring re-evaluation is in sessionRings.ts, who may approve in approvers.ts.
 */
import { z } from 'zod';
import { ControlsConfigSchema } from './controlsConfig';
import {
  DidSchema,
  SigmaSchema,
  fastPaths,
  isDid,
  isNonEmptyString,
  isRecord,
  isSigma,
  ownGet,
  parse,
  parseTimestamp,
  type Did,
  type Ring,
} from './common';
import { HypervisorError } from './errors';
import { isDidKey } from './identity';
import { type HistoryCache, type HistoryStatus, createHistoryCache } from './history';
import { type LiabilityState, releaseSession } from './liability';
import { type ReversibilityRegistry, createReversibilityRegistry } from './reversibility';

export const ConsistencySchema = z.enum(['EVENTUAL', 'STRONG']);
export type Consistency = z.infer<typeof ConsistencySchema>;

/** SPEC §11.6 bounds of a session config. */
export const MAX_PARTICIPANTS_LIMIT = 100;
export const MAX_SRE_WITNESSES = 16;
export const MAX_DRIFT_REPORTERS = 16;
export const MAX_TOOL_ORIGINS = 16;
export const ORIGIN_MAX_LENGTH = 200;
export const MAX_JOIN_ACTIONS = 32;
export const SESSION_ID_MAX = 256;

/** True for an http(s) origin such as `http://127.0.0.1:8080` (scheme, host, optional port; nothing else). */
export function isToolOrigin(x: unknown): x is string {
  if (typeof x !== 'string' || x.length > ORIGIN_MAX_LENGTH) return false;
  try {
    const u = new URL(x);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.origin === x;
  } catch {
    return false;
  }
}

export const ToolOriginSchema = z
  .string()
  .max(ORIGIN_MAX_LENGTH, `an origin must be at most ${ORIGIN_MAX_LENGTH} characters`)
  .refine(
    isToolOrigin,
    'must be an http(s) URL origin such as http://127.0.0.1:8080 (scheme, host and optional port, no path or trailing slash)',
  );

/** SPEC §13, §11.6: an agent's turn (an open saga) — how long it may stay open, and how many steps it may take. */
export const TURN_MAX_STEPS_LIMIT = 500;
export const TURN_DEADLINE_LIMIT_SECONDS = 7 * 86_400;
/** The turns config a session that names none has (each field it omits). */
export const TURNS_DEFAULTS = {
  defaultDeadlineSeconds: 600,
  maxDeadlineSeconds: 3600,
  maxSteps: 50,
  maxOpenPerAgent: 4,
} as const;
export const TURN_MAX_OPEN_LIMIT = 100;
export type TurnsConfig = { -readonly [K in keyof typeof TURNS_DEFAULTS]: number };
/** A session's turns config with SPEC's defaults filled in. */
export const turnsOf = (t: Partial<TurnsConfig> | undefined): TurnsConfig => ({ ...TURNS_DEFAULTS, ...t });
export const TurnsConfigSchema = z
  .strictObject({
    /** A turn opened without a deadline ends (and compensates) after this many seconds. */
    defaultDeadlineSeconds: z
      .number()
      .int('turns.defaultDeadlineSeconds must be a whole number of seconds')
      .positive('turns.defaultDeadlineSeconds must be > 0')
      .max(TURN_DEADLINE_LIMIT_SECONDS, `turns.defaultDeadlineSeconds must be at most ${TURN_DEADLINE_LIMIT_SECONDS}`)
      .optional(),
    /** The longest deadline a turn may ask for. */
    maxDeadlineSeconds: z
      .number()
      .int('turns.maxDeadlineSeconds must be a whole number of seconds')
      .positive('turns.maxDeadlineSeconds must be > 0')
      .max(TURN_DEADLINE_LIMIT_SECONDS, `turns.maxDeadlineSeconds must be at most ${TURN_DEADLINE_LIMIT_SECONDS}`)
      .optional(),
    /** Steps one turn may append (SPEC §11.6). */
    maxSteps: z
      .number()
      .int('turns.maxSteps must be a whole number')
      .positive('turns.maxSteps must be > 0')
      .max(TURN_MAX_STEPS_LIMIT, `turns.maxSteps must be at most ${TURN_MAX_STEPS_LIMIT}`)
      .optional(),
    /** Turns one agent may hold open at once (SPEC §11.6: each is a workflow). */
    maxOpenPerAgent: z
      .number()
      .int('turns.maxOpenPerAgent must be a whole number')
      .positive('turns.maxOpenPerAgent must be > 0')
      .max(TURN_MAX_OPEN_LIMIT, `turns.maxOpenPerAgent must be at most ${TURN_MAX_OPEN_LIMIT}`)
      .optional(),
  })
  .refine((t) => turnsOf(t).defaultDeadlineSeconds <= turnsOf(t).maxDeadlineSeconds, {
    path: ['defaultDeadlineSeconds'],
    message: 'turns.defaultDeadlineSeconds must be at most turns.maxDeadlineSeconds',
  });

export const SessionConfigSchema = z.object({
  consistency: ConsistencySchema.default('EVENTUAL'),
  maxParticipants: z
    .number()
    .int()
    .positive()
    .max(MAX_PARTICIPANTS_LIMIT, `maxParticipants must be at most ${MAX_PARTICIPANTS_LIMIT}`)
    .default(10),
  maxDurationSeconds: z.number().int().positive().default(3600),
  minSigmaEff: SigmaSchema.default(0.6),
  auditEnabled: z.boolean().default(true),
  externalCommitment: z.boolean().default(false),
  /** Approvals a ring-1 step needs (SPEC §11.5). */
  consensusQuorum: z
    .number()
    .int()
    .min(1, 'consensusQuorum must be ≥ 1')
    .max(10, 'consensusQuorum must be ≤ 10')
    .default(2),
  /** DIDs whose co-sign counts as an SRE witness (SPEC §11.5). */
  sreWitnesses: z
    .array(DidSchema)
    .max(MAX_SRE_WITNESSES, `sreWitnesses must list at most ${MAX_SRE_WITNESSES} DIDs`)
    .default(() => []),
  /** Origins at which declared HTTP tools may run (SPEC §11.4). */
  allowedToolOrigins: z
    .array(ToolOriginSchema)
    .max(MAX_TOOL_ORIGINS, `allowedToolOrigins must list at most ${MAX_TOOL_ORIGINS} origins`)
    .default(() => []),
  /** Days the audit store keeps the deltas after termination; roots and commitments are kept forever (SPEC §7). */
  retentionDays: z
    .number()
    .int('retentionDays must be a whole number of days')
    .min(1, 'retentionDays must be ≥ 1')
    .max(36_500, 'retentionDays must be ≤ 36500')
    .default(90),
  /**
   * "did:key": every agent request is signed by the DID it speaks for (src/core/identity.ts); "none" (absent):
   * signatures are optional, and checked when present. Absent rather than defaulted, so that the config —
   * hashed into turn 1 of the trail — of a session that does not ask for it is what it always was.
   */
  identity: z.enum(['none', 'did:key']).optional(),
  /** Quarantine, elevation, rate limits, budgets, breaker (SPEC §12); absent: SPEC's defaults. Absent rather than defaulted, as identity. */
  controls: ControlsConfigSchema.optional(),
  /**
   * SPEC §11.9 (issue 24 N6): the drift verifiers' reporters — did:key DIDs, in every identity mode, since a
   * drift report counts only when signed by one of them. Absent or empty: every drift report is refused.
   * Absent rather than defaulted, as identity.
   */
  driftReporters: z
    .array(DidSchema.refine(isDidKey, 'must be a did:key (a drift reporter signs its reports, in every identity mode)'))
    .max(MAX_DRIFT_REPORTERS, `driftReporters must list at most ${MAX_DRIFT_REPORTERS} DIDs`)
    .optional(),
  /** Open sagas, an agent's turns (SPEC §13); absent: TURNS_DEFAULTS. Absent rather than defaulted, as identity. */
  turns: TurnsConfigSchema.optional(),
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
  /** True once the agent itself has been slashed (as vouchee) in this session: it may not be vouched for again. */
  slashed: boolean;
  /** The most privileged ring it may hold: its ring number is never below this (a MEDIUM drift cap, SPEC §9). */
  ringCap: Ring;
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
  sessionId: z.string().min(1).max(SESSION_ID_MAX, `sessionId must be at most ${SESSION_ID_MAX} characters`),
  config: SessionConfigSchema.default(() => SessionConfigSchema.parse({})),
});
export type CreateSessionInput = z.input<typeof CreateSessionInputSchema>;

/** Create a session; it moves straight from created to handshaking. */
export function createSessionState(input: CreateSessionInput, now: number): SessionState {
  const v =
    (fastPaths.createSession ? fastCreateSessionInput(input) : undefined) ??
    parse(CreateSessionInputSchema, input, 'session');
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
  if (!isRecord(input) || !isNonEmptyString(input.sessionId, SESSION_ID_MAX)) return undefined;
  const config = input.config === undefined ? defaultConfig() : fastSessionConfig(input.config);
  return config && { sessionId: input.sessionId, config };
}

/** A fresh copy of the defaults (no array shared between sessions). */
function defaultConfig(): SessionConfig {
  return { ...CONFIG_DEFAULTS, sreWitnesses: [], allowedToolOrigins: [] };
}

/** A copy of `x` when it is an array of at most `max` items that all pass `item`, else undefined. */
function fastList<T>(x: unknown, max: number, item: (v: unknown) => v is T): T[] | undefined {
  if (x === undefined) return [];
  if (!Array.isArray(x) || x.length > max) return undefined;
  const out: T[] = [];
  for (let i = 0; i < x.length; i++) {
    if (!(i in x)) return undefined; // holes: left to zod
    const v: unknown = x[i];
    if (!item(v)) return undefined;
    out.push(v);
  }
  return out;
}

function fastSessionConfig(c: unknown): SessionConfig | undefined {
  if (
    !isRecord(c) ||
    c.identity !== undefined ||
    c.controls !== undefined ||
    c.driftReporters !== undefined ||
    c.turns !== undefined
  )
    return undefined;
  const d = CONFIG_DEFAULTS;
  // zod's default() fills in only undefined (null is an error, left to zod).
  const consistency = c.consistency === undefined ? d.consistency : c.consistency;
  const maxParticipants = c.maxParticipants === undefined ? d.maxParticipants : c.maxParticipants;
  const maxDurationSeconds = c.maxDurationSeconds === undefined ? d.maxDurationSeconds : c.maxDurationSeconds;
  const minSigmaEff = c.minSigmaEff === undefined ? d.minSigmaEff : c.minSigmaEff;
  const auditEnabled = c.auditEnabled === undefined ? d.auditEnabled : c.auditEnabled;
  const externalCommitment = c.externalCommitment === undefined ? d.externalCommitment : c.externalCommitment;
  const consensusQuorum = c.consensusQuorum === undefined ? d.consensusQuorum : c.consensusQuorum;
  const sreWitnesses = fastList(c.sreWitnesses, MAX_SRE_WITNESSES, isDid);
  const allowedToolOrigins = fastList(c.allowedToolOrigins, MAX_TOOL_ORIGINS, isToolOrigin);
  const retentionDays = c.retentionDays === undefined ? d.retentionDays : c.retentionDays;
  if (
    (consistency !== 'EVENTUAL' && consistency !== 'STRONG') ||
    !isPositiveSafeInt(maxParticipants) ||
    maxParticipants > MAX_PARTICIPANTS_LIMIT ||
    !isPositiveSafeInt(maxDurationSeconds) ||
    !isSigma(minSigmaEff) ||
    typeof auditEnabled !== 'boolean' ||
    typeof externalCommitment !== 'boolean' ||
    !isPositiveSafeInt(consensusQuorum) ||
    consensusQuorum > 10 ||
    sreWitnesses === undefined ||
    allowedToolOrigins === undefined ||
    !isPositiveSafeInt(retentionDays) ||
    retentionDays > 36_500
  ) {
    return undefined;
  }
  return {
    consistency,
    maxParticipants,
    maxDurationSeconds,
    minSigmaEff,
    auditEnabled,
    externalCommitment,
    consensusQuorum,
    sreWitnesses,
    allowedToolOrigins,
    retentionDays,
  };
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

/** The participant record of `did` (active or not), never an Object.prototype member. */
export function participantOf(s: SessionState, did: string): Participant | undefined {
  return ownGet(s.participants, did);
}

export function requireParticipant(s: SessionState, did: Did): Participant {
  const p = participantOf(s, did);
  if (!p || !p.active) {
    throw new HypervisorError(
      'AGENT_NOT_FOUND',
      `agent ${did} is not an active participant of session ${s.sessionId}`,
      {
        did,
        sessionId: s.sessionId,
      },
    );
  }
  return p;
}

/** Lifecycle states in which agents may join. */
export const JOINABLE: SessionLifecycle[] = ['handshaking', 'active'];

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

// σ_eff for an action: the gate's rule (src/core/gate.ts), kept out of this module so a saga need not build it.
export { sigmaEffWith } from './gate';
