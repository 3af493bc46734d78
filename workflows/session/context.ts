/**
 * The session's context: its state (what continue-as-new carries), the run's
 * own bookkeeping, and the few rules every handler family shares — is the
 * session open, record a delta, is this DID a participant, an SRE, restricted.
 * Families are module functions over this one explicit object (no closures).
 */
import * as wf from '@temporalio/workflow';
import type { createActivities } from '../../activities';
import { ownGet, parse } from '../../src/core/common';
import { HypervisorError } from '../../src/core/errors';
import { appendDelta, createAuditState, type ChangeInput } from '../../src/core/audit';
import { canonicalJson, sha256Hex } from '../../src/core/hash';
import { createDriftHistoryState, createTrustCache } from '../../src/core/adapters';
import { createLiabilityState } from '../../src/core/liability';
import type { GateDecision } from '../../src/core/gate';
import { Controls, isKill } from '../../src/core/controls';
import { controlsConfig } from '../../src/core/controlsConfig';
import { createSessionState, participantOf } from '../../src/core/session';
import { createVfsState } from '../../src/core/vfs';
import type { DeltaSignature, NonceWindows, Signers } from '../../src/core/identity';
import { RecordedSessionInputSchema, SESSION_START_RULES } from '../../src/contract';
import { governed } from '../failures';
import type {
  RequestRecord,
  SagaRecord,
  SessionWorkflowInput,
  SessionWorkflowState,
  TerminateResult,
} from '../../src/contract/sessionTypes';
import { patched, uuid4 } from '../ownRun';

/** The hypervisor itself, as the author of deltas no agent caused (demotions, termination, saga outcomes). */
export const HYPERVISOR_DID = 'did:hv:hypervisor';

/** The integrations (scorer, verifier, anchor, saga reads): a few retries, then the request fails. */
export const integrations = wf.proxyActivities<ReturnType<typeof createActivities>>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 3, initialInterval: '1 second', backoffCoefficient: 2 },
});

/**
 * The audit store: retried until it answers (an outage delays the trail, it never drops it). An append by
 * reference asks the session for its deltas within the attempt (10 s deadline, activities/audit.ts), well
 * inside its 30 s.
 */
export const auditStore = wf.proxyActivities<ReturnType<typeof createActivities>>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

/**
 * N27 (behind the `audit-outage-serve` patch): the same, with retries at most 10 s apart, so a
 * session that waits for the store (at its continue-as-new point, at termination) resumes within
 * seconds of the store answering again, not up to a minute later.
 */
export const auditStoreQuick = wf.proxyActivities<ReturnType<typeof createActivities>>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 seconds' },
});

export const contentHash = (value: unknown) => sha256Hex(canonicalJson(value));

/**
 * A checkAction decision as its delta records it: the fields it had before
 * rule codes. A replay re-derives every delta, and must hash what was stored.
 */
export function recordedDecision(decision: GateDecision): Omit<GateDecision, 'rule'> {
  const { rule: _rule, ...recorded } = decision;
  return recorded;
}

/** SPEC §12: a killed agent's step handed to a substitute is bound to its old digest and the substitute. */
export function handoffDigest(previous: string, agentDid: string): string {
  return sha256Hex(canonicalJson({ handedFrom: previous, agentDid }));
}

/** SPEC §12: what approvals of an elevation are bound to. */
export function elevationDigest(e: {
  sessionId: string;
  elevationId: string;
  agentDid: string;
  ring: number;
  ttlSeconds: number;
  justification: string;
}): string {
  const { sessionId, elevationId, agentDid, ring, ttlSeconds, justification } = e;
  return sha256Hex(canonicalJson({ sessionId, elevationId, agentDid, ring, ttlSeconds, justification }));
}

export { stepDigest } from '../../src/core/sagaContract';

/** One run of a session: its state and what the run keeps beside it. */
export interface SessionContext {
  readonly input: SessionWorkflowInput;
  readonly st: SessionWorkflowState;
  readonly sessionId: string;
  readonly maxUpdatesPerRun: number;
  /** "did:key": every agent request is signed by the DIDs it speaks for (src/core/identity.ts). */
  readonly identity: 'none' | 'did:key';
  /** Per-DID replay windows; a run carried from before signed requests has none yet. */
  readonly nonces: NonceWindows;
  /** SPEC §12: quarantines, kills, elevations, rate buckets, budgets, the breach detector. */
  readonly controls: Controls;
  /** Delegations: child DID → parent DID. */
  readonly parents: Map<string, string>;
  /** Budgets are configured (the config does not change within a run): only then are reservations kept. */
  readonly budgetsOn: boolean;
  readonly sagas: Map<string, SagaRecord>;
  /** The last requests accepted, by request id (requests.ts): a resend gets the first answer. */
  readonly requests: Map<string, RequestRecord>;
  /** Sagas this run started: their completion reaches this run. Others are read by id. */
  readonly children: Set<string>;
  /** DIDs whose join is in flight (between its validator and its record). */
  readonly joining: Set<string>;
  /** The session's chain of runs: with the workflow id, what the store knows the trail's owner by. */
  readonly chain: string;
  updatesThisRun: number;
  /** Work this run started outside handlers (saga outcomes); continue-as-new waits for it. */
  background: number;
  terminated: TerminateResult | undefined;
  /** Children being started (their start not yet confirmed); terminate waits for them. */
  startsInFlight: number;
  closing: boolean;
  /** Bumped when bonds change, so the expiry timer is re-armed. */
  bondsVersion: number;
  /**
   * While a saga's outcome is recorded: its end time. Workflow time in that
   * activation is not the same live and on replay (a refused update's
   * speculative task moves the live clock), and the trail a query serves after
   * the close is a replay: it must equal the committed one.
   */
  outcomeTime: number | undefined;
  /** Termination and continue-as-new want every delta stored now. */
  flushWanted: number;
  flushing: boolean;
  /** Set when the store refuses this session's trail for good: the session fails with it. */
  fatal: wf.ApplicationFailure | undefined;
  /** The store has this session's first turn (or it carries on from a run that had it). */
  trailStarted: boolean;
  /** This run is handing over to the next: requests wait for it (else a busy session never gets there). */
  windingDown: boolean;
  /** N27: the run's audit-store retries are the quick ones, and it serves on past its continue-as-new point while the store is down. */
  outageServe: boolean;
  /** N27: past its continue-as-new point, storing what it recorded before handing over: it serves within the overdraft bounds. */
  overdraft: boolean;
  /** What the search attributes hold now; an upsert is a history event, so only a change is upserted. */
  indexed: string;
  /** HvQuarantined is indexed once something was quarantined (sessions without controls keep their history as it was). */
  quarantineIndexed: boolean;
  /** An update's validator is running (`actsBehind`: it may not leave a patch marker). */
  validating: boolean;
}

function startState(input: SessionWorkflowInput): SessionWorkflowState {
  const v = governed(() => parse(RecordedSessionInputSchema, input, 'session input'));
  // The rules added since: a session started before one replays as it ran (its patch is asked only when it is broken).
  for (const rule of SESSION_START_RULES) {
    const refusals = rule.refusals(v);
    if (refusals.length > 0 && patched(rule.patch)) {
      const named = refusals.map((r) => `${r.path.join('.')}: ${r.message}`).join('; ');
      throw wf.ApplicationFailure.nonRetryable(`invalid session input: ${named}`, 'INVALID_INPUT');
    }
  }
  const now = Date.now();
  const session = governed(() => createSessionState({ sessionId: v.sessionId, config: v.config }, now));
  return {
    session,
    liability: createLiabilityState(),
    audit: createAuditState(v.sessionId),
    vfs: createVfsState(v.sessionId, { contentsInStore: true }),
    trustCache: createTrustCache(),
    drift: createDriftHistoryState(),
    sagas: [],
    sagaCount: 0,
    decisions: 0,
    slashes: 0,
    scorerConfigured: false,
    commitment: null,
    runs: 1,
    nonces: [],
  };
}

/**
 * The state a previous run handed over. Only a run that continued from another
 * may carry state: from a client, `carried` is refused (INVALID_INPUT) rather
 * than trusted.
 */
function carriedState(input: SessionWorkflowInput | null | undefined): SessionWorkflowState | undefined {
  const info = wf.workflowInfo();
  // A cron or scheduled start repeats a client's input: a session is started once, by a client, and continues only by itself.
  if (info.cronSchedule || info.searchAttributes?.TemporalScheduledById !== undefined) {
    throw wf.ApplicationFailure.nonRetryable(
      'invalid session start: a session cannot run on a cron schedule or a Temporal schedule; start each session once',
      'INVALID_INPUT',
    );
  }
  if (input?.carried === undefined) return undefined;
  // A retry also continues from a run; its input is still the client's. The store binds the rest (proveCarried).
  if (
    !info.continuedFromExecutionRunId ||
    info.attempt > 1 ||
    typeof input.carried !== 'object' ||
    input.carried === null
  ) {
    throw wf.ApplicationFailure.nonRetryable(
      'invalid session input: carried: only a session continuing as new carries state',
      'INVALID_INPUT',
    );
  }
  return input.carried;
}

/** Any unexpected error in setting up is the input's fault: fail the workflow with it, never the task forever. */
function initialState(input: SessionWorkflowInput): SessionWorkflowState {
  try {
    return carriedState(input) ?? startState(input);
  } catch (err) {
    if (err instanceof wf.ApplicationFailure) throw err;
    throw wf.ApplicationFailure.nonRetryable(
      `invalid session input: ${(err as Error)?.message ?? String(err)}`,
      'INVALID_INPUT',
    );
  }
}

export function createContext(input: SessionWorkflowInput): SessionContext {
  const st = initialState(input);
  const controls = new Controls(controlsConfig(st.session.config.controls), st.controls);
  return {
    input,
    st,
    sessionId: st.session.sessionId,
    maxUpdatesPerRun: input?.maxUpdatesPerRun ?? 1000,
    identity: st.session.config.identity ?? 'none',
    nonces: new Map(st.nonces ?? []),
    controls,
    parents: new Map<string, string>(st.parents ?? []),
    budgetsOn: Object.values(controls.config.budgets).some((v) => v !== undefined),
    sagas: new Map<string, SagaRecord>(st.sagas.map((s) => [s.sagaId, s])),
    requests: new Map<string, RequestRecord>((st.requests ?? []).map((r) => [r.id, r])),
    children: new Set<string>(),
    joining: new Set<string>(),
    chain: wf.workflowInfo().firstExecutionRunId,
    updatesThisRun: 0,
    background: 0,
    terminated: undefined,
    startsInFlight: 0,
    closing: false,
    bondsVersion: 0,
    outcomeTime: undefined,
    flushWanted: 0,
    flushing: false,
    fatal: undefined,
    trailStarted: false,
    windingDown: false,
    outageServe: false,
    overdraft: false,
    indexed: '',
    quarantineIndexed: (st.controls?.restrictions.length ?? 0) > 0,
    validating: false,
  };
}

/**
 * Whether a change behind `patch` acts here: asked only on the path where it would act (a patch's first use is
 * a marker and a search-attribute upsert). A validator runs only live, where every patch is on, and must leave
 * no command: there it acts without asking.
 */
export const actsBehind = (ctx: SessionContext, patch: string): boolean => ctx.validating || patched(patch);

// ── Shared rules ────────────────────────────────────────────────────────────

export const isOpenState = (ctx: SessionContext) =>
  ctx.st.session.state !== 'terminating' && ctx.st.session.state !== 'archived';
export const isOpen = (ctx: SessionContext) => !ctx.closing && isOpenState(ctx);

/** SPEC §7 [resolved]: from terminating on, nothing adds a delta; the committed root covers every one. */
export function requireOpen(ctx: SessionContext, what: string): void {
  if (!isOpen(ctx)) {
    const state = ctx.closing && isOpenState(ctx) ? 'terminating' : ctx.st.session.state;
    throw new HypervisorError(
      'SESSION_CLOSED',
      `cannot ${what}: session ${ctx.sessionId} is ${state}; it records nothing more`,
      { state },
    );
  }
}

/** `at`: when it happened, if not now (a saga's outcome: its own end time, the same on every replay). */
export function record(
  ctx: SessionContext,
  agentDid: string,
  changes: ChangeInput[],
  at = ctx.outcomeTime ?? Date.now(),
  signatures?: DeltaSignature[],
): void {
  if (!ctx.st.session.config.auditEnabled || changes.length === 0) return;
  appendDelta(ctx.st.audit, {
    deltaId: uuid4(),
    sessionId: ctx.sessionId,
    agentDid,
    at,
    changes,
    ...(signatures?.length ? { signatures } : {}),
  });
}

export function requireState(ctx: SessionContext, what: string, allowed: readonly string[]): void {
  const state = ctx.st.session.state;
  if (!allowed.includes(state)) {
    throw new HypervisorError(
      'INVALID_TRANSITION',
      `cannot ${what} in session ${ctx.sessionId} in state ${state}; allowed in ${allowed.join(', ')}`,
      { state, allowed },
    );
  }
}

export function requireActiveParticipant(ctx: SessionContext, did: string, role = 'agent') {
  const p = participantOf(ctx.st.session, did);
  if (!p?.active)
    throw new HypervisorError(
      'AGENT_NOT_FOUND',
      `${role} ${did} is not an active participant of session ${ctx.sessionId}`,
      { did },
    );
  return p;
}

export function requireSre(ctx: SessionContext, did: string, role: string): void {
  if (!ctx.st.session.config.sreWitnesses.includes(did)) {
    throw new HypervisorError(
      'NOT_SRE_WITNESS',
      `${role} ${did} is not one of session ${ctx.sessionId}'s SRE witnesses (config.sreWitnesses)`,
      { did },
    );
  }
}

/** SPEC §12: a quarantined or killed agent may not approve, vouch, delegate or be elevated. */
export function requireUnrestricted(ctx: SessionContext, did: string, role: string): void {
  const r = ctx.controls.restrictionOf(did, Date.now());
  if (r)
    throw new HypervisorError(
      isKill(r) ? 'AGENT_KILLED' : 'AGENT_QUARANTINED',
      `${role} ${did} is ${isKill(r) ? 'killed' : 'quarantined'} in session ${ctx.sessionId}: ${r.reason}`,
      { did },
    );
}

/** Who may activate or terminate: the creator or an SRE witness (in a did:key session, by their signature). */
export const controllers = (ctx: SessionContext): Signers => ({
  anyOf: [ctx.input.creatorDid ?? '', ...ctx.st.session.config.sreWitnesses].filter((d) => d !== ''),
});
export const one = (did: string): Signers => ({ all: [did] });

export const costOf = (ctx: SessionContext, actionId: string) =>
  ownGet(ctx.st.session.registry.entries, actionId)?.costUnits ?? 0;
export const childrenOf = (ctx: SessionContext, did: string) =>
  [...ctx.parents].filter(([, p]) => p === did).map(([c]) => c);

/** A bond of this session, by id (BOND_NOT_FOUND otherwise). */
export const bondOf = (ctx: SessionContext, r: { bondId: string }) => {
  const b = ownGet(ctx.st.liability.bonds, r.bondId);
  if (!b || b.sessionId !== ctx.sessionId)
    throw new HypervisorError('BOND_NOT_FOUND', `bond ${r.bondId} is not a bond of session ${ctx.sessionId}`);
  return b;
};
