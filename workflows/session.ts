/**
 * The session workflow: the source of truth for one session — participants
 * with their σ and ring, bonds, the reversibility registry, the VFS and the
 * audit chain — and the authority behind every grant (SPEC §11).
 *
 * - Every change arrives as an update, a request: its validator applies every
 *   rule it can check without waiting, so a refused request leaves no history.
 * - Sagas are its children. Each starts from the view the session gives it;
 *   later pushes (`restrict`) may only take privilege away. A saga that needs
 *   more (approvals, a witness, a raise) reads `stepGrant` from an activity.
 * - The session learns a saga's outcome only from authentic sources: the
 *   child's completion, or reading the saga by id in an activity when the
 *   session has continued as new since it started it. Only those record
 *   step deltas or slash.
 */
import * as wf from '@temporalio/workflow';
import type { createActivities } from '../activities';
import { ownGet, parse } from '../src/common';
import { HypervisorError } from '../src/errors';
import { appendDelta, auditMerkleRoot, createAuditState, markStored, type ChangeInput, type Delta } from '../src/audit';
import { canonicalJson, sha256Hex } from '../src/hash';
import { collectGarbage, commitAudit } from '../src/commitment';
import { cacheTrustScore, cachedTrust, createDriftHistoryState, createTrustCache, invalidateTrust, recordDriftCheck } from '../src/adapters';
import { createLiabilityState, liabilityMatrix, nextBondExpiry, pruneExpired, release, sessionBonds } from '../src/liability';
import { riskWeight } from '../src/reversibility';
import { gateStep, type GateDecision } from '../src/gate';
import { Controls, controlsConfig, reportedCost, stepKey, type Elevation, type Refusal, type Restriction } from '../src/controls';
import {
  activate, archive, beginTerminate, capRing, checkDeclarations, createSessionState, declarationSource, declaredActions, gateView, join, leave, participantOf, refreshRings,
  slashInSession, vouchInSession, type RingChange,
} from '../src/session';
import { createVfsState } from '../src/vfs';
import { acceptNonces, checkAuth, IDENTITY_CHANGE, receiptChange, type DeltaSignature, type NonceWindows, type Signers } from '../src/identity';
import {
  AgentRequestSchema, ApprovalRequestSchema, CheckActionRequestSchema, DriftReportSchema, JoinRequestSchema, NoArgumentSchema,
  RejectionRequestSchema, ReleaseBondRequestSchema, SessionInputSchema, SlashRequestSchema, StartSagaRequestSchema, StepRefSchema,
  VouchRequestSchema, WitnessRequestSchema,
  ElevationApprovalSchema, ElevationRequestSchema, KillRequestSchema, QuarantineRequestSchema, ReleaseRequestSchema, RevokeElevationRequestSchema,
  type ActionView, type AgentView, type JoinRequestParsed, type SagaWorkflowInput, type StartSagaRequestParsed, type StepRef,
} from '../src/contract';
import {
  activateUpdate, approveUpdate, auditQuery, checkActionUpdate, joinUpdate, leaveUpdate, liabilityQuery, participantQuery,
  rejectUpdate, releaseBondUpdate, reportDriftUpdate, restrictSignal, sagaEndedSignal, sagasQuery, sagaWorkflowId, slashUpdate,
  startSagaUpdate, stepGrantQuery, summaryQuery, terminateUpdate, vouchUpdate, wakeSignal, witnessUpdate,
  approveElevationUpdate, claimStepUpdate, killUpdate, quarantineUpdate, releaseUpdate, requestElevationUpdate, revokeElevationUpdate,
} from './definitions';
import { governed, asFailure, queryAnswer } from './failures';
import { MESSAGES, signedBy } from '../src/contract/messages';
import { HvAgentDids, HvQuarantined, HvSagaState, HvSessionId, HvSessionState, indexedAgentDids } from './searchAttributes';
import { sagaWorkflow } from './saga';
import { sagaStaticDetails } from './sagaDetails';
import type { SagaSnapshot } from './sagaTypes';
import type {
  ControlResult, ControlsSummary, ElevationView, EvidenceResult, SagaRecord, SessionSummary, SessionWorkflowInput, SessionWorkflowState,
  SlashResult, StepEvidence, StepGrant, TerminateResult,
} from './sessionTypes';
import { registerVfsHandlers } from './sessionVfs';
import { annotateRun, gateDecided, ringAssigned, slashed } from './observe';
import { ATTR, type SlashCause } from '../src/observability';

/** The hypervisor itself, as the author of deltas no agent caused (demotions, termination, saga outcomes). */
export const HYPERVISOR_DID = 'did:hv:hypervisor';

/** Finished sagas kept in the session's record (older ones are in the audit trail and their own histories). */
const FINISHED_SAGAS_KEPT = 100;

const integrations = wf.proxyActivities<ReturnType<typeof createActivities>>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 3, initialInterval: '1 second', backoffCoefficient: 2 },
});

/** The audit store: retried until it answers (an outage delays the trail, it never drops it). */
const auditStore = wf.proxyActivities<ReturnType<typeof createActivities>>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

/**
 * Batching of the trail into the store (SPEC §7 [resolved]): a batch goes when
 * it is full, when termination or continue-as-new needs everything stored, or
 * when its first delta has waited AUDIT_FLUSH_INTERVAL. Batches are bounded in
 * deltas and bytes (Temporal refuses payloads over 2 MiB).
 */
const AUDIT_BATCH_DELTAS = 256;
const AUDIT_BATCH_BYTES = 512 * 1024;
const AUDIT_FLUSH_INTERVAL = '5 seconds';
/** Deltas waiting for the store beyond which new requests are refused (AUDIT_BACKLOG): the store is not keeping up. */
export const AUDIT_BACKLOG_MAX = 4096;

function nextBatch(pending: readonly Delta[]): Delta[] {
  const batch: Delta[] = [];
  let bytes = 0;
  for (const d of pending) {
    bytes += JSON.stringify(d).length;
    if (batch.length > 0 && (batch.length >= AUDIT_BATCH_DELTAS || bytes > AUDIT_BATCH_BYTES)) break;
    batch.push(d);
  }
  return batch;
}

const contentHash = (value: unknown) => sha256Hex(canonicalJson(value));

/**
 * A checkAction decision as its delta records it: the fields it had before
 * rule codes. A replay re-derives every delta, and must hash what was stored.
 */
function recordedDecision(decision: GateDecision): Omit<GateDecision, 'rule'> {
  const { rule: _rule, ...recorded } = decision;
  return recorded;
}

/** SPEC §12: a killed agent's step handed to a substitute is bound to its old digest and the substitute. */
export function handoffDigest(previous: string, agentDid: string): string {
  return sha256Hex(canonicalJson({ handedFrom: previous, agentDid }));
}

/** SPEC §12: what approvals of an elevation are bound to. */
export function elevationDigest(e: { sessionId: string; elevationId: string; agentDid: string; ring: number; ttlSeconds: number; justification: string }): string {
  const { sessionId, elevationId, agentDid, ring, ttlSeconds, justification } = e;
  return sha256Hex(canonicalJson({ sessionId, elevationId, agentDid, ring, ttlSeconds, justification }));
}

/** SPEC §11.5: what approvals and witnesses of a step are bound to. */
export function stepDigest(step: { sessionId: string; sagaId: string; stepId: string; actionId: string; agentDid: string; input: unknown }): string {
  const { sessionId, sagaId, stepId, actionId, agentDid, input } = step;
  return sha256Hex(canonicalJson({ sessionId, sagaId, stepId, actionId, agentDid, input: input ?? null }));
}

function startState(input: SessionWorkflowInput): SessionWorkflowState {
  const v = governed(() => parse(SessionInputSchema, input, 'session input'));
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
    throw wf.ApplicationFailure.nonRetryable('invalid session start: a session cannot run on a cron schedule or a Temporal schedule; start each session once', 'INVALID_INPUT');
  }
  if (input?.carried === undefined) return undefined;
  // A retry also continues from a run; its input is still the client's. The store binds the rest (proveCarried).
  if (!info.continuedFromExecutionRunId || info.attempt > 1 || typeof input.carried !== 'object' || input.carried === null) {
    throw wf.ApplicationFailure.nonRetryable('invalid session input: carried: only a session continuing as new carries state', 'INVALID_INPUT');
  }
  return input.carried;
}

/** Any unexpected error in setting up is the input's fault: fail the workflow with it, never the task forever. */
function initialState(input: SessionWorkflowInput): SessionWorkflowState {
  try {
    return carriedState(input) ?? startState(input);
  } catch (err) {
    if (err instanceof wf.ApplicationFailure) throw err;
    throw wf.ApplicationFailure.nonRetryable(`invalid session input: ${(err as Error)?.message ?? String(err)}`, 'INVALID_INPUT');
  }
}

export async function sessionWorkflow(input: SessionWorkflowInput): Promise<TerminateResult> {
  const st: SessionWorkflowState = initialState(input);
  const maxUpdatesPerRun = input?.maxUpdatesPerRun ?? 1000;
  const sessionId = st.session.sessionId;
  /** "did:key": every agent request is signed by the DIDs it speaks for (src/identity.ts). */
  const identity = st.session.config.identity ?? 'none';
  /** Per-DID replay windows; a run carried from before signed requests has none yet. */
  const nonces: NonceWindows = new Map(st.nonces ?? []);
  /** SPEC §12: quarantines, kills, elevations, rate buckets, budgets, the breach detector. */
  const controls = new Controls(controlsConfig(st.session.config.controls), st.controls);
  /** Delegations: child DID → parent DID. */
  const parents = new Map<string, string>(st.parents ?? []);
  /** Budgets are configured (the config does not change within a run): only then are reservations kept. */
  const budgetsOn = Object.values(controls.config.budgets).some((v) => v !== undefined);
  const costOf = (actionId: string) => ownGet(st.session.registry.entries, actionId)?.costUnits ?? 0;
  annotateRun(() => ({ [ATTR.sessionId]: sessionId }));
  const sagas = new Map<string, SagaRecord>(st.sagas.map((s) => [s.sagaId, s]));
  /** Sagas this run started: their completion reaches this run. Others are read by id. */
  const children = new Set<string>();
  /** DIDs whose join is in flight (between its validator and its record). */
  const joining = new Set<string>();
  let updatesThisRun = 0;
  /** Work this run started outside handlers (saga outcomes); continue-as-new waits for it. */
  let background = 0;
  let terminated: TerminateResult | undefined;
  /** Children being started (their start not yet confirmed), and whether terminate is waiting for them. */
  let startsInFlight = 0;
  let closing = false;
  /** Bumped when bonds change, so the expiry timer is re-armed. */
  let bondsVersion = 0;

  // ── Recording ─────────────────────────────────────────────────────────────
  const isOpenState = () => st.session.state !== 'terminating' && st.session.state !== 'archived';
  const isOpen = () => !closing && st.session.state !== 'terminating' && st.session.state !== 'archived';

  /** SPEC §7 [resolved]: from terminating on, nothing adds a delta; the committed root covers every one. */
  function requireOpen(what: string): void {
    if (!isOpen()) {
      const state = closing && isOpenState() ? 'terminating' : st.session.state;
      throw new HypervisorError('SESSION_CLOSED', `cannot ${what}: session ${sessionId} is ${state}; it records nothing more`, { state });
    }
  }

  /** `at`: when it happened, if not now (a saga's outcome: its own end time, the same on every replay). */
  function record(agentDid: string, changes: ChangeInput[], at = outcomeTime ?? Date.now(), signatures?: DeltaSignature[]): void {
    if (!st.session.config.auditEnabled || changes.length === 0) return;
    appendDelta(st.audit, { deltaId: wf.uuid4(), sessionId, agentDid, at, changes, ...(signatures?.length ? { signatures } : {}) });
  }
  /**
   * While a saga's outcome is recorded: its end time. Workflow time in that
   * activation is not the same live and on replay (a refused update's
   * speculative task moves the live clock), and the trail a query serves after
   * the close is a replay: it must equal the committed one.
   */
  let outcomeTime: number | undefined;

  // ── The audit store ───────────────────────────────────────────────────────
  /** Termination and continue-as-new want every delta stored now. */
  let flushWanted = 0;
  let flushing = false;
  /** Set when the store refuses this session's trail for good: the session fails with it. */
  let fatal: wf.ApplicationFailure | undefined;
  /** The store has this session's first turn (or it carries on from a run that had it). */
  let trailStarted = false;
  /** The session's chain of runs: with the workflow id, what the store knows the trail's owner by. */
  const chain = wf.workflowInfo().firstExecutionRunId;
  /** This run is handing over to the next: requests wait for it (else a busy session never gets there). */
  let windingDown = false;

  async function flushBatch(): Promise<void> {
    const batch = nextBatch(st.audit.deltas);
    if (batch.length === 0) return;
    flushing = true;
    try {
      const appended = await auditStore.appendAuditDeltas({ sessionId, deltas: batch, chain });
      // The store's hashes (from history, the same live and on replay) are the chain from here on.
      markStored(st.audit, (batch[batch.length - 1] as Delta).turn, appended.stored);
    } catch (err) {
      const cause = err instanceof wf.ActivityFailure ? err.cause : err;
      const code = cause instanceof wf.ApplicationFailure ? cause.type : undefined;
      // The first batch of a new session meets another session's trail under its id: nothing can be recorded for it.
      if (code === 'AUDIT_CONFLICT' && st.audit.stored === 0 && batch[0]?.turn === 1) {
        fatal = wf.ApplicationFailure.nonRetryable(`session ${sessionId}: the audit store already holds another trail under this session id; start the session under a new id`, 'AUDIT_CONFLICT');
        return;
      }
      wf.log.error('audit store refused a batch; retrying in a minute', { sessionId, fromTurn: batch[0]?.turn, error: String((cause as Error)?.message ?? cause) });
      await wf.sleep('1 minute');
    } finally {
      flushing = false;
    }
  }

  async function flushLoop(): Promise<void> {
    while (fatal === undefined) {
      await wf.condition(() => st.audit.deltas.length > 0);
      if (flushWanted === 0 && st.audit.deltas.length < AUDIT_BATCH_DELTAS) {
        await wf.condition(() => flushWanted > 0 || st.audit.deltas.length >= AUDIT_BATCH_DELTAS, AUDIT_FLUSH_INTERVAL);
      }
      await flushBatch();
    }
  }

  /** Wait until the store holds every delta recorded so far. */
  async function flushAll(): Promise<void> {
    flushWanted++;
    try {
      await wf.condition(() => fatal !== undefined || (st.audit.deltas.length === 0 && !flushing));
    } finally {
      flushWanted--;
    }
  }

  /** SPEC §11.6: every list is bounded — while the store lags this far behind, requests that add deltas wait outside. */
  function requireAuditCapacity(what: string): void {
    if (st.audit.deltas.length >= AUDIT_BACKLOG_MAX) {
      throw new HypervisorError('AUDIT_BACKLOG', `cannot ${what}: ${st.audit.deltas.length} deltas of session ${sessionId} are waiting for the audit store; retry once it has caught up`, { waiting: st.audit.deltas.length });
    }
  }

  // ── Views ─────────────────────────────────────────────────────────────────
  function agentView(did: string): AgentView | undefined {
    const v = gateView(st.session, st.liability, did, Date.now());
    if (!v) return undefined;
    const now = Date.now();
    const restriction = controls.level(did, now);
    const elevation = controls.activeElevation(did, now);
    return {
      did,
      sigmaRaw: v.sigmaRaw,
      bondSum: Math.min(1, v.bondSum),
      ringCap: v.historyTrustworthy ? v.ringCap : 3,
      active: v.active,
      // Only when in force: a view without controls is what it always was.
      ...(restriction > 0 ? { restriction } : {}),
      ...(elevation ? { elevation: { ring: elevation.ring, until: elevation.until! } } : {}),
    };
  }

  /** The ring an agent's step starts are rate-limited by: its own, or its active elevation's. */
  function effectiveRing(did: string): 0 | 1 | 2 | 3 {
    const p = participantOf(st.session, did);
    const e = controls.activeElevation(did, Date.now());
    return Math.min(p?.ring ?? 3, e?.ring ?? 3) as 0 | 1 | 2 | 3;
  }

  function actionView(actionId: string): ActionView | undefined {
    const e = ownGet(st.session.registry.entries, actionId);
    if (!e) return undefined;
    return {
      actionId, readOnly: e.readOnly, admin: e.admin, reversibility: e.level, omega: e.riskWeight, executeApi: e.executeApi, undoApi: e.undoApi,
    };
  }

  const runningSagas = () => [...sagas.values()].filter((s) => s.state === 'running');

  /** SPEC §11.3: tell running sagas what was taken away from these agents. */
  function restrictSagas(dids: readonly string[]): void {
    if (dids.length === 0) return;
    const touched = new Set(dids);
    for (const saga of runningSagas()) {
      const agents = saga.agentDids.filter((d) => touched.has(d)).map(agentView).filter((v): v is AgentView => v !== undefined);
      if (agents.length === 0) continue;
      void wf.getExternalWorkflowHandle(saga.workflowId).signal(restrictSignal, { agents }).catch(() => undefined);
    }
  }

  function applyRingChanges(changes: RingChange[], cause: string, touched: readonly string[] = []): void {
    // SPEC §12: a delegated child is never more privileged than its parent's ring + 1 — it follows demotions.
    const following = changes.filter((c) => c.kind === 'demotion').flatMap((c) => childrenOf(c.did).flatMap((child) => capRing(st.session, child, Math.min(3, c.to + 1) as 0 | 1 | 2 | 3)));
    if (following.length > 0) changes = [...changes, ...following];
    for (const c of changes) {
      ringAssigned(c.to, c.kind);
      record(HYPERVISOR_DID, [{ path: `/participants/${c.did}/ring`, operation: 'modify', contentHash: contentHash({ ring: c.to, sigmaEff: c.sigmaEff, cause }), previousHash: contentHash({ ring: c.from }) }]);
    }
    refreshSearchAttributes();
    restrictSagas([...new Set([...changes.map((c) => c.did), ...touched])]);
  }

  /** What the search attributes hold now; an upsert is a history event, so only a change is upserted. */
  let indexed = '';
  /** HvQuarantined is indexed once something was quarantined (sessions without controls keep their history as it was). */
  let quarantineIndexed = (st.controls?.restrictions.length ?? 0) > 0;
  function refreshSearchAttributes(): void {
    const agents = Object.keys(st.session.participants).sort();
    const quarantined = controls.quarantined(Date.now());
    if (quarantined.length > 0) quarantineIndexed = true;
    const key = `${st.session.state}|${agents.join(',')}${quarantineIndexed ? `|q:${quarantined.join(',')}` : ''}`;
    if (key !== indexed) {
      indexed = key;
      wf.upsertSearchAttributes([
        { key: HvSessionId, value: sessionId },
        { key: HvSessionState, value: st.session.state },
        { key: HvAgentDids, value: indexedAgentDids(agents) },
        ...(quarantineIndexed ? [{ key: HvQuarantined, value: indexedAgentDids(quarantined) }] : []),
      ]);
    }
    wf.setCurrentDetails(currentDetails());
  }

  function summary(): SessionSummary {
    return {
      sessionId,
      state: st.session.state,
      consistency: st.session.config.consistency,
      config: st.session.config,
      participants: Object.values(st.session.participants).map((p) => ({
        did: p.did, ring: p.ring, sigmaRaw: p.sigmaRaw, sigmaEff: p.sigmaEff, active: p.active, historyStatus: p.historyStatus,
        slashed: p.slashed ?? false, ringCap: p.ringCap ?? 0,
      })),
      activeBonds: sessionBonds(st.liability, sessionId, Date.now()).length,
      deltaCount: st.audit.turn,
      merkleRoot: auditMerkleRoot(st.audit),
      sagas: [...sagas.values()],
      files: Object.keys(st.vfs.files).length,
      runs: st.runs,
      commitment: st.commitment,
      controls: controlsSummary(),
    };
  }

  function controlsSummary(): ControlsSummary {
    const now = Date.now();
    const dids = Object.keys(st.session.participants);
    return {
      restricted: [...controls.restrictions].filter(([d]) => controls.level(d, now) > 0).map(([did, r]) => ({ did, ...r })),
      elevations: [...controls.elevations.values()].map(elevationView),
      delegations: [...parents].map(([child, parent]) => ({ child, parent })),
      spent: {
        session: controls.sessionUsage().spent,
        agents: dids.map((did) => ({ did, ...controls.usage(did) })).filter((a) => a.spent.calls + a.reserved.calls > 0),
      },
    };
  }

  function currentDetails(): string {
    const s = summary();
    const rows = s.participants.map((p) => `| ${p.did} | ${p.ring} | ${p.sigmaEff.toFixed(3)} | ${p.active ? 'yes' : 'left'}${p.slashed ? ' · slashed' : ''} |`);
    const list = s.sagas.slice(-20).map((g) => `| ${g.sagaId} | ${g.state} |`);
    const restricted = s.controls.restricted.map((r) => `**${r.kind === 'kill' ? 'Killed' : 'Quarantined'}:** ${r.did}${r.until ? ` until ${new Date(r.until).toISOString()}` : ''} — ${r.reason}`);
    return [
      `## Session ${sessionId} — ${s.state}`,
      `Consistency **${s.consistency}** · ${s.deltaCount} deltas · Merkle root \`${s.merkleRoot ?? '—'}\``,
      ...(restricted.length ? ['', ...restricted] : []),
      '',
      '| agent | ring | σ_eff | active |', '|---|---|---|---|', ...(rows.length ? rows : ['| — | | | |']),
      '',
      ...(list.length ? ['| saga | state |', '|---|---|', ...list] : ['No sagas yet.']),
    ].join('\n');
  }

  /**
   * Updates run the rules; a rule's rejection fails the update (and only it)
   * with its error code. An unexpected error also fails only the update: no
   * input may fail the workflow task (SPEC §11.6).
   */
  function handle<A extends unknown[], R>(fn: (...args: A) => Promise<R> | R) {
    return async (...args: A): Promise<R> => {
      updatesThisRun++;
      try {
        if (!trailStarted) await wf.condition(() => trailStarted || fatal !== undefined);
        if (fatal) throw fatal;
        return await fn(...args);
      } catch (err) {
        const failure = asFailure(err);
        if (failure instanceof wf.ApplicationFailure) throw failure;
        wf.log.error('session update failed unexpectedly', { error: String(err) });
        throw wf.ApplicationFailure.nonRetryable(`internal error: ${(err as Error)?.message ?? String(err)}`, 'INTERNAL');
      }
    };
  }

  /**
   * A validator: the schema, then who signed it (`signers`: the DIDs the request speaks for), then the
   * rules that need no waiting. Throws a named error; never touches state.
   */
  function validator<T>(schema: Parameters<typeof parse>[0], what: string, rules?: (req: T) => void, signers?: (req: T) => Signers) {
    return (arg: unknown) => {
      governed(() => {
        if (windingDown) {
          throw new HypervisorError('SESSION_CONTINUING', `cannot ${what} now: session ${sessionId} is continuing as new; send it again (the typed client does)`);
        }
        if (what !== 'terminate') requireAuditCapacity(what);
        const req = parse(schema, arg, what) as T;
        if (signers) checkAuth({ identity, sessionId, windows: nonces, now: Date.now() }, what, arg, signers(req));
        rules?.(req);
      });
    };
  }

  // ── Signed requests (issue 12) ────────────────────────────────────────────
  /**
   * The handler's part of a signed request: its nonces are still fresh (a
   * concurrent request may have used one since the validator ran), and are
   * remembered; returns the signatures its delta keeps. The signatures and
   * issuedAt were checked by the validator, before the request was accepted:
   * they are a function of the request, and the workflow clock of a replay
   * is not the live one.
   */
  function acceptAuth(what: string, raw: unknown, signers: Signers): DeltaSignature[] {
    const signatures = checkAuth({ identity, sessionId, windows: nonces }, what, raw, signers);
    acceptNonces(nonces, what, raw);
    return signatures;
  }
  /** A request as its schema parses it, without its signatures (they are the request's proof, not its content). */
  function request<S extends Parameters<typeof parse>[0]>(schema: S, raw: unknown, what: string): Omit<ReturnType<typeof parse<S>>, 'auth'> {
    const { auth: _, ...req } = parse(schema, raw, what) as Record<string, unknown>;
    return req as never;
  }
  /** Who may activate or terminate: the creator or an SRE witness (in a did:key session, by their signature). */
  const controllers = (): Signers => ({ anyOf: [input.creatorDid ?? '', ...st.session.config.sreWitnesses].filter((d) => d !== '') });
  const one = (did: string): Signers => ({ all: [did] });

  const requireState = (what: string, allowed: readonly string[]) => {
    if (!allowed.includes(st.session.state)) {
      throw new HypervisorError('INVALID_TRANSITION', `cannot ${what} in session ${sessionId} in state ${st.session.state}; allowed in ${allowed.join(', ')}`, { state: st.session.state, allowed });
    }
  };
  const requireActiveParticipant = (did: string, role = 'agent') => {
    const p = participantOf(st.session, did);
    if (!p?.active) throw new HypervisorError('AGENT_NOT_FOUND', `${role} ${did} is not an active participant of session ${sessionId}`, { did });
    return p;
  };
  const requireSre = (did: string, role: string) => {
    if (!st.session.config.sreWitnesses.includes(did)) {
      throw new HypervisorError('NOT_SRE_WITNESS', `${role} ${did} is not one of session ${sessionId}'s SRE witnesses (config.sreWitnesses)`, { did });
    }
  };

  // The creation is turn 1. Record it before any handler exists: an update that
  // arrived with the start runs as soon as its handler is set.
  if (!input.carried) {
    record(HYPERVISOR_DID, [
      { path: '/', operation: 'add', contentHash: contentHash({ sessionId, config: st.session.config, creatorDid: input.creatorDid }) },
      // Says to an offline verifier that every agent's delta of this trail carries its signature.
      ...(identity === 'did:key' ? [IDENTITY_CHANGE] : []),
    ]);
  }
  // The creation goes to the store before any request is granted: a session id whose trail the store
  // already holds (an earlier session's) fails the session here. Requests accepted meanwhile wait in
  // `handle`, and their handlers check their rules again when they go on.
  // A continued run proves its carried state first: the store's trail is this chain's, and its head is
  // the carried one (SPEC §11: carried state is a claim like any input). Nothing is stored or granted before.
  const proving = input.carried !== undefined && st.session.config.auditEnabled && wf.patched('carried-state-proven');
  if (proving) {
    void proveCarried().then(() => flushLoop());
  } else {
    void flushLoop();
    trailStarted = input.carried !== undefined || !st.session.config.auditEnabled;
    if (!trailStarted) {
      void flushAll().then(() => { trailStarted = true; });
    }
  }

  async function proveCarried(): Promise<void> {
    try {
      if (st.audit.stored !== st.audit.turn) throw new Error(`it carries ${st.audit.turn - st.audit.stored} deltas the store does not hold`);
      await auditStore.checkCarriedTrail({ sessionId, chain, turn: st.audit.turn, head: st.audit.head });
      trailStarted = true;
    } catch (err) {
      const cause = err instanceof wf.ActivityFailure ? err.cause : err;
      fatal = wf.ApplicationFailure.nonRetryable(`session ${sessionId}: carried state is not proven by the audit store: ${(cause as Error)?.message ?? String(cause)}`, 'AUDIT_CONFLICT');
    }
  }

  // ── Participants ──────────────────────────────────────────────────────────
  /** A delegated join speaks for the child and its parent: both sign. */
  const joinSigners = signedBy.join;
  const childrenOf = (did: string) => [...parents].filter(([, p]) => p === did).map(([c]) => c);
  /** SPEC §12: a quarantined or killed agent may not approve, vouch, delegate or be elevated. */
  const requireUnrestricted = (did: string, role: string) => {
    const r = controls.restrictionOf(did, Date.now());
    if (r) throw new HypervisorError(r.kind === 'kill' ? 'AGENT_KILLED' : 'AGENT_QUARANTINED', `${role} ${did} is ${r.kind === 'kill' ? 'killed' : 'quarantined'} in session ${sessionId}: ${r.reason}`, { did });
  };
  function joinRules(req: JoinRequestParsed): void {
    requireState('join', ['handshaking', 'active']);
    if (req.delegatedBy !== undefined) {
      const parent = requireActiveParticipant(req.delegatedBy, 'parent');
      if (req.delegatedBy === req.agentDid) throw new HypervisorError('INVALID_INPUT', 'invalid join: delegatedBy: an agent cannot delegate to itself');
      if (parent.slashed) throw new HypervisorError('AGENT_SLASHED', `parent ${req.delegatedBy} was slashed in session ${sessionId}; it may not delegate`, { did: req.delegatedBy });
      requireUnrestricted(req.delegatedBy, 'parent');
    }
    const existing = participantOf(st.session, req.agentDid);
    if (existing || joining.has(req.agentDid)) {
      throw new HypervisorError('DUPLICATE_AGENT', existing && !existing.active
        ? `agent ${req.agentDid} already joined session ${sessionId} and left; it may not rejoin`
        : `agent ${req.agentDid} is already in session ${sessionId}`, { did: req.agentDid });
    }
    if (st.session.activeCount + joining.size >= st.session.config.maxParticipants) {
      throw new HypervisorError('SESSION_FULL', `session ${sessionId} is full (${st.session.activeCount + joining.size} of ${st.session.config.maxParticipants} participants)`);
    }
    // SPEC §11.4, one path for every declaration: the join's own actions or its manifest's.
    checkDeclarations(st.session, declaredActions(req), declarationSource(req));
  }

  wf.setHandler(joinUpdate, handle(async (raw) => {
    const req = request(JoinRequestSchema, raw, 'join');
    joinRules(req);
    // Its nonce is remembered once it has joined: until then `joining`, and after it the participant, refuse a replay.
    const signatures = checkAuth({ identity, sessionId, windows: nonces }, 'join', raw, joinSigners(req));
    joining.add(req.agentDid);
    try {
      // SPEC §3: the scorer's σ when σ_raw is absent; the lower of the two when both exist.
      // A regular activity, not a local one (local ones broke replay under concurrent updates in SDK 1.24).
      let scoredSigma = cachedTrust(st.trustCache, req.agentDid, Date.now())?.sigma;
      if (scoredSigma === undefined) {
        const score = await integrations.scoreTrust(req.agentDid);
        if (score !== null) {
          st.scorerConfigured = true;
          scoredSigma = cacheTrustScore(st.trustCache, req.agentDid, score, Date.now()).sigma;
        }
      }
      requireOpen('join');
      const result = join(st.session, st.liability, { ...req, scoredSigma }, Date.now());
      const p = participantOf(st.session, req.agentDid)!;
      acceptNonces(nonces, 'join', raw);
      // SPEC §12: a delegated child starts capped at its parent's ring + 1.
      const delegated = req.delegatedBy !== undefined ? capRing(st.session, req.agentDid, Math.min(3, participantOf(st.session, req.delegatedBy)!.ring + 1) as 0 | 1 | 2 | 3) : [];
      if (req.delegatedBy !== undefined) parents.set(req.agentDid, req.delegatedBy);
      ringAssigned(p.ring, 'join');
      record(req.agentDid, [
        { path: `/participants/${req.agentDid}`, operation: 'add', contentHash: contentHash(p) },
        ...(req.delegatedBy !== undefined ? [{ path: `/participants/${req.agentDid}/delegatedBy`, operation: 'add' as const, contentHash: contentHash({ parent: req.delegatedBy, ringCap: p.ringCap }) }] : []),
        ...p.actions.map((a) => ({ path: `/registry/${a}`, operation: 'add' as const, contentHash: contentHash(ownGet(st.session.registry.entries, a)) })),
      ], undefined, signatures);
      refreshSearchAttributes();
      return delegated.length ? { ...result, ring: p.ring, sigmaEff: p.sigmaEff } : result;
    } finally {
      joining.delete(req.agentDid);
    }
  }), { validator: validator(JoinRequestSchema, 'join', joinRules, joinSigners), description: MESSAGES.join.description });

  const activateRules = () => {
    requireState('activate', ['handshaking']);
    if (st.session.activeCount < 1) throw new HypervisorError('INVALID_TRANSITION', `cannot activate session ${sessionId}: it has no participants`);
  };
  wf.setHandler(activateUpdate, handle((raw?: unknown) => {
    parse(NoArgumentSchema, raw, 'activate');
    const signatures = acceptAuth('activate', raw, controllers());
    activate(st.session, Date.now());
    record(HYPERVISOR_DID, [{ path: '/state', operation: 'modify', contentHash: contentHash('active'), previousHash: contentHash('handshaking') }], undefined, signatures);
    refreshSearchAttributes();
    return summary();
  }) as () => Promise<SessionSummary>, { validator: validator(NoArgumentSchema, 'activate', activateRules, controllers) as () => void, description: MESSAGES.activate.description });

  const leaveRules = (r: { agentDid: string }) => { requireOpen('leave'); requireActiveParticipant(r.agentDid); };
  wf.setHandler(leaveUpdate, handle((raw) => {
    const { agentDid } = request(AgentRequestSchema, raw, 'leave');
    leaveRules({ agentDid });
    const signatures = acceptAuth('leave', raw, one(agentDid));
    const p = leave(st.session, agentDid, Date.now());
    record(agentDid, [{ path: `/participants/${agentDid}/active`, operation: 'modify', contentHash: contentHash(false), previousHash: contentHash(true) }], undefined, signatures);
    refreshSearchAttributes();
    restrictSagas([agentDid]);
    return p;
  }), { validator: validator(AgentRequestSchema, 'leave', leaveRules, signedBy.agent), description: MESSAGES.leave.description });

  const vouchRules = (r: { voucher: string; vouchee: string }) => {
    requireState('vouch', ['handshaking', 'active']);
    requireActiveParticipant(r.voucher, 'voucher');
    requireUnrestricted(r.voucher, 'voucher');
    const vouchee = requireActiveParticipant(r.vouchee, 'vouchee');
    if (vouchee.slashed) throw new HypervisorError('AGENT_SLASHED', `agent ${r.vouchee} was slashed in session ${sessionId}; nobody may vouch for it`, { did: r.vouchee });
  };
  wf.setHandler(vouchUpdate, handle((raw) => {
    const req = request(VouchRequestSchema, raw, 'vouch');
    vouchRules(req);
    const signatures = acceptAuth('vouch', raw, signedBy.vouch(req));
    const { bond, ringChanges } = vouchInSession(st.session, st.liability, req, Date.now(), wf.uuid4());
    record(req.voucher, [{ path: `/bonds/${bond.bondId}`, operation: 'add', contentHash: contentHash(bond) }], undefined, signatures);
    bondsVersion++;
    applyRingChanges(ringChanges, `vouch ${bond.bondId}`);
    return bond;
  }), { validator: validator(VouchRequestSchema, 'vouch', vouchRules, signedBy.vouch), description: MESSAGES.vouch.description });

  const bondOf = (r: { bondId: string }) => {
    const b = ownGet(st.liability.bonds, r.bondId);
    if (!b || b.sessionId !== sessionId) throw new HypervisorError('BOND_NOT_FOUND', `bond ${r.bondId} is not a bond of session ${sessionId}`);
    return b;
  };
  const releaseRules = (r: { bondId: string }) => {
    requireOpen('release a bond');
    if (bondOf(r).releasedAt !== null) throw new HypervisorError('BOND_RELEASED', `bond ${r.bondId} was already released`);
  };
  wf.setHandler(releaseBondUpdate, handle((raw) => {
    const req = request(ReleaseBondRequestSchema, raw, 'releaseBond');
    releaseRules(req);
    const existing = bondOf(req);
    const signatures = acceptAuth('releaseBond', raw, one(existing.voucher));
    const before = contentHash(existing);
    const bond = release(st.liability, req.bondId, Date.now(), req.reason);
    record(bond.voucher, [{ path: `/bonds/${bond.bondId}`, operation: 'delete', previousHash: before }], undefined, signatures);
    bondsVersion++;
    applyRingChanges(refreshRings(st.session, st.liability, Date.now(), [bond.vouchee]), `release ${bond.bondId}`, [bond.vouchee]);
    return bond;
  }), { validator: validator(ReleaseBondRequestSchema, 'releaseBond', releaseRules, (r: { bondId: string }) => one(bondOf(r).voucher)), description: MESSAGES.releaseBond.description });

  const checkActionRules = (r: { agentDid: string }) => { requireOpen('check an action'); requireActiveParticipant(r.agentDid); };
  wf.setHandler(checkActionUpdate, handle((raw) => {
    const req = request(CheckActionRequestSchema, raw, 'checkAction');
    checkActionRules(req);
    const signatures = acceptAuth('checkAction', raw, signedBy.agent(req));
    const decision = gateStep({ agent: agentView(req.agentDid), action: actionView(req.actionId), sessionState: st.session.state, hasConsensus: false, hasSreWitness: false, ringsOnly: true, now: Date.now() });
    st.decisions++;
    record(req.agentDid, [{ path: `/decisions/${st.decisions}`, operation: 'add', contentHash: contentHash({ ...req, ...recordedDecision(decision) }) }], undefined, signatures);
    noteRequests(req.agentDid, [req.actionId]);
    gateDecided('check_action', decision, decision.rule, () => ({
      [ATTR.sessionId]: sessionId, [ATTR.agentDid]: req.agentDid, [ATTR.actionId]: req.actionId,
    }));
    return decision;
  }), { validator: validator(CheckActionRequestSchema, 'checkAction', checkActionRules, signedBy.agent), description: MESSAGES.checkAction.description });

  // ── Slashing and drift ────────────────────────────────────────────────────
  /** `severity` is what the trust scorer is told (SPEC §9: critical or high for drift). */
  async function slashAgent(agentDid: string, reason: string, omega: number, by: string, cause: SlashCause, severity?: string, signatures?: DeltaSignature[]): Promise<SlashResult> {
    st.slashes++;
    const result = slashInSession(st.session, st.liability, { vouchee: agentDid, reason, omega, slashId: `${sessionId}-slash-${st.slashes}` }, Date.now());
    for (const s of result.outcome.slashes) {
      slashed(cause, () => ({ [ATTR.sessionId]: sessionId, [ATTR.agentDid]: s.vouchee }));
      record(by, [
        { path: `/slashes/${s.slashId}`, operation: 'add', contentHash: contentHash(s) },
        { path: `/participants/${s.vouchee}/sigma`, operation: 'modify', contentHash: contentHash(0), previousHash: contentHash(s.sigmaBefore) },
        ...s.clips.map((c) => ({ path: `/participants/${c.voucher}/sigma`, operation: 'modify' as const, contentHash: contentHash(c.after), previousHash: contentHash(c.before) })),
      ], undefined, signatures);
    }
    bondsVersion++;
    applyRingChanges(result.ringChanges, `slash of ${agentDid}`, result.outcome.touched);
    // Tell the scorer; its cached score for the agent is stale now.
    invalidateTrust(st.trustCache, agentDid);
    await integrations.reportToTrustScorer({ agentDid, kind: 'slash', reason, ...(severity ? { severity } : {}) }).catch(() => undefined);
    return result;
  }

  const slashRules = (r: { agentDid: string; witnessDid: string }) => {
    requireOpen('slash');
    if (!participantOf(st.session, r.agentDid)) throw new HypervisorError('AGENT_NOT_FOUND', `agent ${r.agentDid} is not a participant of session ${sessionId}`);
    requireSre(r.witnessDid, 'witness');
    if (r.witnessDid === r.agentDid) throw new HypervisorError('NOT_SRE_WITNESS', `an agent may not witness its own slash`);
  };
  wf.setHandler(slashUpdate, handle(async (raw) => {
    const req = request(SlashRequestSchema, raw, 'slash');
    slashRules(req);
    const signatures = acceptAuth('slash', raw, signedBy.witness(req));
    return slashAgent(req.agentDid, `${req.reason} (witnessed by ${req.witnessDid})`, req.omega ?? 0.95, req.witnessDid, 'witness', undefined, signatures);
  }), { validator: validator(SlashRequestSchema, 'slash', slashRules, signedBy.witness), description: MESSAGES.slash.description });

  const driftRules = (r: { agentDid: string }) => { requireOpen('report drift'); requireActiveParticipant(r.agentDid); };
  wf.setHandler(reportDriftUpdate, handle(async (raw) => {
    const req = parse(DriftReportSchema, raw, 'reportDrift');
    driftRules(req);
    const drift = await integrations.measureDrift({ ...req, sessionId });
    requireOpen('record drift');
    const decision = recordDriftCheck(st.drift, { agentDid: req.agentDid, sessionId, drift, now: Date.now() });
    record(HYPERVISOR_DID, [{ path: `/drift/${req.agentDid}/${ownGet(st.drift.byDid, req.agentDid)?.checks ?? 0}`, operation: 'add', contentHash: contentHash(decision) }]);
    if (decision.action === 'slash') {
      const slash = await slashAgent(req.agentDid, `behavioural drift ${decision.drift.toFixed(3)} (${decision.severity})`, decision.slashOmega ?? 0.95, HYPERVISOR_DID, 'drift', decision.reportSeverity ?? undefined);
      return { decision, slash, ringChanges: slash.ringChanges };
    }
    if (decision.action === 'demote') {
      // SPEC §9 [resolved]: one ring down, held for the rest of the session.
      const changes = capRing(st.session, req.agentDid);
      applyRingChanges(changes, `drift ${decision.drift.toFixed(3)}`, [req.agentDid]);
      return { decision, slash: null, ringChanges: changes };
    }
    return { decision, slash: null, ringChanges: [] };
  }), { validator: validator(DriftReportSchema, 'reportDrift', driftRules), description: MESSAGES.reportDrift.description });

  // ── Sagas ─────────────────────────────────────────────────────────────────
  const startSagaRules = (r: { sagaId?: string; steps: { agentDid: string }[] }) => {
    requireState('start a saga', ['active']);
    if (closing) throw new HypervisorError('SESSION_CLOSED', `cannot start a saga: session ${sessionId} is terminating`, { state: 'terminating' });
    if (r.sagaId !== undefined && sagas.has(r.sagaId)) throw new HypervisorError('DUPLICATE_SAGA', `saga ${r.sagaId} already exists in session ${sessionId}`, { sagaId: r.sagaId });
    // Only members sign in a did:key session (so the replay windows it keeps are the members' alone).
    if (identity === 'did:key') {
      const stranger = r.steps.find((s) => !participantOf(st.session, s.agentDid));
      if (stranger) throw new HypervisorError('AGENT_NOT_FOUND', `cannot start a saga: step agent ${stranger.agentDid} is not a participant of session ${sessionId}`, { did: stranger.agentDid });
    }
    // SPEC §12: the first step must fit its agent's rate and budget now, or the start is refused with when to retry.
    const first = r.steps[0] as { agentDid: string; actionId: string; stepId?: string };
    const refusal = leaseCheck(first.agentDid, first.actionId);
    if (refusal) throw refused(first.stepId ?? 'step-1', refusal);
  };

  /** Whether one step start fits its agent's rate and the budgets now (null: yes, or not a participant — the gate denies that). */
  function leaseCheck(did: string, actionId: string): Refusal | null {
    if (!participantOf(st.session, did)?.active) return null;
    return (budgetsOn ? controls.checkBudget(did, costOf(actionId)) : null) ?? controls.checkTokens(did, effectiveRing(did), 1, Date.now());
  }
  const refused = (stepId: string, r: Refusal) => new HypervisorError(r.code, `cannot start a saga: step ${stepId}: ${r.reason}`, { retryAfterMs: r.retryAfterMs });

  /**
   * Leases one step start (SPEC §12): a rate token, and its budget reserved under the step's key. A step
   * leased already (a repeated claim) is not charged again. 'skip': its agent is not an active participant.
   */
  function leaseStep(saga: { sagaId: string; workflowId: string }, step: StepEvidence): Refusal | 'skip' | null {
    if (step.leased) return null;
    if (!participantOf(st.session, step.agentDid)?.active) return 'skip';
    // The budget first: a token is taken only for a step that fits it (reserve cannot refuse after this check).
    const cost = costOf(step.actionId);
    const refusal = (budgetsOn ? controls.checkBudget(step.agentDid, cost) : null) ?? controls.takeTokens(step.agentDid, effectiveRing(step.agentDid), 1, Date.now());
    if (refusal) return refusal;
    if (budgetsOn) controls.reserve(stepKey(saga.workflowId, step.stepId), { agentDid: step.agentDid, sagaId: saga.sagaId, cost });
    step.leased = true;
    return null;
  }

  /** SPEC §12's breach detector: each request an agent makes, and whether it aims above its ring; a trip quarantines it. */
  function noteRequests(did: string, actionIds: readonly string[]): void {
    if (!participantOf(st.session, did)?.active) return;
    for (const actionId of actionIds) {
      const now = Date.now();
      const d = gateStep({ agent: agentView(did), action: actionView(actionId), sessionState: 'active', hasConsensus: true, hasSreWitness: true, ringsOnly: true, now });
      const above = !d.allowed && (d.rule === 'ring_capped' || d.rule === 'sigma_too_low' || d.rule === 'ring_too_low');
      const { severity, share, trip } = controls.noteRequest(did, above, now);
      if (!trip) continue;
      impose(did, { kind: 'breaker', since: now, until: now + trip.cooldownMs, reason: `breach ${severity}: ${Math.round(share * 100)}% of its requests aimed above its ring`, by: HYPERVISOR_DID, substitute: null }, HYPERVISOR_DID);
    }
  }

  /** Records a restriction and takes it to the running sagas at once. */
  function impose(did: string, r: Restriction, by: string, signatures?: DeltaSignature[]): void {
    controls.restrict(did, r);
    if (r.until !== null) armExpiry(r.until);
    record(by, [{ path: `/controls/${did}`, operation: 'add', contentHash: contentHash(r) }], undefined, signatures);
    refreshSearchAttributes();
    restrictSagas([did]);
  }
  /**
   * A saga acts in the name of every agent of its steps — their rate, budget and liability (a failed undo
   * slashes the step's agent) — so each of them signs its start, not only whoever asks for it.
   */
  const sagaSigners = signedBy.startSaga;

  function nextSagaId(): string {
    let id: string;
    do id = `saga-${++st.sagaCount}`; while (sagas.has(id));
    return id;
  }

  wf.setHandler(startSagaUpdate, handle(async (raw) => {
    const req = request(StartSagaRequestSchema, raw, 'startSaga') as StartSagaRequestParsed;
    startSagaRules(req);
    const signatures = acceptAuth('startSaga', raw, sagaSigners(req));
    // Each step is a request of its agent for its action's ring (the breach detector's input).
    const byAgent = new Map<string, string[]>();
    for (const s of req.steps) byAgent.set(s.agentDid, [...(byAgent.get(s.agentDid) ?? []), s.actionId]);
    for (const [did, actionIds] of byAgent) noteRequests(did, actionIds);
    // An automatic id skips ids whose workflow someone else already holds (a squatter): a few tries.
    for (let tries = 1; ; tries++) {
      const started = await startOneSaga(req, req.sagaId ?? nextSagaId(), signatures);
      if (started.ok) return started.result;
      if (req.sagaId !== undefined || tries >= 5) throw started.error;
    }
  }), { validator: validator(StartSagaRequestSchema, 'startSaga', startSagaRules, sagaSigners), description: MESSAGES.startSaga.description });

  async function startOneSaga(req: StartSagaRequestParsed, sagaId: string, signatures: DeltaSignature[]) {
    const workflowId = sagaWorkflowId(sessionId, sagaId);
    const steps = req.steps.map((s, i) => {
      const stepId = s.stepId ?? `step-${i + 1}`;
      return { ...s, stepId, digest: stepDigest({ sessionId, sagaId, stepId, actionId: s.actionId, agentDid: s.agentDid, input: s.input }) };
    });
    const agentDids = [...new Set(steps.map((s) => s.agentDid))].sort();
    const actionIds = [...new Set(steps.map((s) => s.actionId))];
    const sagaInput: SagaWorkflowInput = {
      sessionId, sagaId, description: req.description, steps,
      agents: agentDids.map(agentView).filter((v): v is AgentView => v !== undefined),
      actions: actionIds.map(actionView).filter((v): v is ActionView => v !== undefined),
      quorum: st.session.config.consensusQuorum,
    };
    const record_: SagaRecord = {
      sagaId, workflowId, description: req.description ?? null, state: 'running', startedAt: Date.now(), endedAt: null, agentDids,
      steps: steps.map((s) => ({ stepId: s.stepId, actionId: s.actionId, agentDid: s.agentDid, digest: s.digest, approvers: [], rejectedBy: null, witness: null })),
      error: null,
    };
    // SPEC §12: the saga holds a lease of the steps that fit now, in order; the rest claim at their time.
    for (const [i, step] of record_.steps.entries()) {
      const refusal = leaseStep(record_, step);
      if (refusal === null) continue;
      if (i === 0 && refusal !== 'skip') throw refused(step.stepId, refusal);
      break;
    }
    for (const s of sagaInput.steps) (s as { leased?: boolean }).leased = record_.steps.find((e) => e.stepId === s.stepId)!.leased === true;
    sagas.set(sagaId, record_);
    startsInFlight++;
    let child: wf.ChildWorkflowHandle<typeof sagaWorkflow>;
    try {
      child = await wf.startChild(sagaWorkflow, {
        workflowId,
        args: [sagaInput],
        // The session continues as new while sagas run: they go on, and the new run reads their outcome by id.
        parentClosePolicy: 'ABANDON',
        staticSummary: `Saga ${sagaId} of session ${sessionId}${req.description ? `: ${req.description}` : ''}`,
        staticDetails: sagaStaticDetails(steps),
        typedSearchAttributes: [
          { key: HvSessionId, value: sessionId },
          { key: HvAgentDids, value: indexedAgentDids(agentDids) },
          { key: HvSagaState, value: 'running' },
        ],
      });
    } catch (err) {
      // Its workflow id is taken (a client squatted it): the saga never ran, and nothing is recorded.
      sagas.delete(sagaId);
      for (const key of controls.reservationsOf(sagaId)) controls.settle(key, false);
      return { ok: false as const, error: new HypervisorError('DUPLICATE_SAGA', `saga ${sagaId} could not be started in session ${sessionId}: ${(err as Error).message}`) };
    } finally {
      startsInFlight--;
    }
    children.add(sagaId);
    // Terminate waits for starts in flight (it closes only once every started saga can hear it).
    record(HYPERVISOR_DID, [{ path: `/sagas/${sagaId}`, operation: 'add', contentHash: contentHash({ sagaId, workflowId, steps: steps.map((s) => s.digest) }) }], undefined, signatures);
    // Not awaited: the session continues as new while sagas run (a later run reads the outcome by id).
    child.result().then(
      (snapshot) => settleSaga(sagaId, { snapshot, failure: null }),
      (err) => settleSaga(sagaId, outcomeOfFailure(err)),
    ).catch((err) => wf.log.error('saga outcome not recorded', { sagaId, error: String(err) }));
    // The run id pins the saga a client waits on: a later workflow reusing the id is not this saga.
    return { ok: true as const, result: { sagaId, workflowId, runId: child.firstExecutionRunId, digests: Object.fromEntries(steps.map((s) => [s.stepId, s.digest])) } };
  }


  /** The saga ended as a failed workflow (compensated, escalated, failed): its snapshot is in the failure's details. */
  function outcomeOfFailure(err: unknown): { snapshot: SagaSnapshot | null; failure: string | null } {
    let cause: unknown = err;
    while (cause instanceof wf.ChildWorkflowFailure || (cause instanceof wf.TemporalFailure && !(cause instanceof wf.ApplicationFailure) && cause.cause)) {
      cause = (cause as wf.TemporalFailure).cause;
    }
    if (cause instanceof wf.ApplicationFailure && cause.type && ['SagaCompensated', 'SagaEscalated', 'SagaFailed'].includes(cause.type)) {
      const snapshot = cause.details?.[0] as SagaSnapshot | undefined;
      if (snapshot && typeof snapshot === 'object') return { snapshot, failure: null };
    }
    return { snapshot: null, failure: (cause as Error)?.message ?? String(err) };
  }

  /**
   * A saga's outcome, from an authentic source only (its completion to this
   * run, or an activity's read by id). Records one delta for its steps, then
   * slashes the agents of failed compensations (SPEC §6), then tells the trust
   * scorer the step outcomes (SPEC §9).
   */
  async function settleSaga(sagaId: string, outcome: { snapshot: SagaSnapshot | null; failure: string | null }): Promise<void> {
    const saga = sagas.get(sagaId);
    if (!saga || saga.state !== 'running') return;
    background++;
    try {
      await settle(saga, outcome);
    } finally {
      background--;
    }
  }

  async function settle(saga: SagaRecord, outcome: { snapshot: SagaSnapshot | null; failure: string | null }): Promise<void> {
    const sagaId = saga.sagaId;
    const snap = outcome.snapshot;
    saga.state = snap ? snap.saga.state : 'lost';
    saga.endedAt = snap?.saga.finishedAt ?? Date.now();
    saga.error = snap ? snap.error : outcome.failure;
    saga.steps = [];
    trimFinished();
    if (!isOpen()) {
      for (const key of controls.reservationsOf(sagaId)) controls.settle(key, false);
      return; // closed: the committed root is final; the saga's own history keeps its outcome.
    }
    const steps = snap?.saga.steps ?? [];
    // SPEC §12: a step that acted is charged once (its key), with the cost its result reported; the rest are released.
    const charged = new Map<string, { calls: number; cost: number }>();
    for (const s of steps) {
      const acted = s.state === 'committed' || s.state === 'compensating' || s.state === 'compensated' || s.state === 'compensation_failed';
      const charge = controls.settle(stepKey(saga.workflowId, s.stepId), acted, reportedCost(s.result));
      if (charge) charged.set(s.agentDid, controls.usage(s.agentDid).spent);
    }
    for (const key of controls.reservationsOf(sagaId)) controls.settle(key, false);
    record(HYPERVISOR_DID, [
      { path: `/sagas/${sagaId}/state`, operation: 'modify', contentHash: contentHash({ state: saga.state, error: saga.error }) },
      ...steps.map((s) => ({ path: `/sagas/${sagaId}/steps/${s.stepId}`, operation: 'modify' as const, contentHash: contentHash({ state: s.state, agentDid: s.agentDid, actionId: s.actionId, attempts: s.attempts, error: s.error }) })),
      ...[...charged].map(([did, spent]) => ({ path: `/budgets/${did}`, operation: 'modify' as const, contentHash: contentHash(spent) })),
    ], saga.endedAt ?? Date.now());
    wf.setCurrentDetails(currentDetails());
    for (const s of steps.filter((x) => x.state === 'compensation_failed')) {
      if (!isOpen() || !participantOf(st.session, s.agentDid)) continue;
      outcomeTime = saga.endedAt ?? undefined;
      const slashed = slashAgent(s.agentDid, `saga ${sagaId} escalated at step ${s.stepId}: ${s.error ?? 'compensation failed'}`, riskWeight(st.session.registry, s.actionId), HYPERVISOR_DID, 'compensation_failed');
      outcomeTime = undefined;
      await slashed;
    }
    if (st.scorerConfigured) {
      const outcomes = steps.filter((s) => s.state !== 'pending').map((s) => ({ agentDid: s.agentDid, kind: 'outcome' as const, reason: `step ${s.stepId} (${s.actionId}) ${s.state}` }));
      for (const o of outcomes) await integrations.reportToTrustScorer(o).catch(() => undefined);
    }
  }

  function trimFinished(): void {
    const finished = [...sagas.values()].filter((s) => s.state !== 'running');
    for (const s of finished.slice(0, Math.max(0, finished.length - FINISHED_SAGAS_KEPT))) sagas.delete(s.sagaId);
  }

  /** A saga this run did not start (the session continued as new since): read its outcome by id. */
  async function readOutcome(sagaId: string, ended = false): Promise<void> {
    const saga = sagas.get(sagaId);
    if (!saga || saga.state !== 'running' || children.has(sagaId)) return;
    background++;
    try {
      // A saga that says it ended signals just before it closes: the read waits a moment for the close.
      const read = await integrations.readSagaOutcome({ workflowId: saga.workflowId, sessionWorkflowId: wf.workflowInfo().workflowId, waitMs: ended ? 10_000 : 0 });
      if (read.status === 'closed') await settleSaga(sagaId, { snapshot: read.snapshot as SagaSnapshot | null, failure: read.failure });
    } finally {
      background--;
    }
  }

  wf.setHandler(sagaEndedSignal, (raw) => {
    // A wake-up, not a fact: the outcome is read by id (SPEC §11.2–§11.3).
    const sagaId = typeof raw === 'object' && raw !== null && typeof raw.sagaId === 'string' ? raw.sagaId : undefined;
    if (sagaId !== undefined && sagas.has(sagaId)) void readOutcome(sagaId, true).catch(() => undefined);
  });

  // ── Evidence: approvals, rejections, witnesses (SPEC §11.5) ───────────────
  function evidenceOf(ref: { sagaId: string; stepId: string; digest: string }, doing: string): { saga: SagaRecord; step: StepEvidence } {
    const saga = sagas.get(ref.sagaId);
    if (!saga) throw new HypervisorError('SAGA_NOT_FOUND', `cannot ${doing}: session ${sessionId} has no saga ${ref.sagaId}`);
    if (saga.state !== 'running') throw new HypervisorError('SAGA_ENDED', `cannot ${doing}: saga ${ref.sagaId} is ${saga.state}`);
    const step = saga.steps.find((s) => s.stepId === ref.stepId);
    if (!step) throw new HypervisorError('STEP_NOT_FOUND', `cannot ${doing}: saga ${ref.sagaId} has no step ${ref.stepId}`);
    if (step.digest !== ref.digest && step.handedFrom?.digest !== ref.digest) {
      throw new HypervisorError('DIGEST_MISMATCH', `cannot ${doing}: digest is not step ${ref.stepId}'s (${step.digest}); evidence is bound to what the step does`);
    }
    return { saga, step };
  }

  /** Approvers that count now (SPEC §11.5, §12): active, not slashed, not quarantined or killed, not the acting agent. */
  const countsAsApprover = (d: string, agentDid: string) => {
    const p = participantOf(st.session, d);
    return p?.active === true && !p.slashed && d !== agentDid && controls.level(d, Date.now()) === 0;
  };
  const countedApprovers = (step: StepEvidence) => step.approvers.filter((d) => countsAsApprover(d, step.agentDid));

  const evidenceResult = (saga: SagaRecord, step: StepEvidence): EvidenceResult => ({
    sagaId: saga.sagaId, stepId: step.stepId, digest: step.digest, approvals: countedApprovers(step).length,
    quorum: st.session.config.consensusQuorum, rejected: step.rejectedBy !== null, witnessed: step.witness !== null,
  });

  const approverRules = (r: { sagaId: string; stepId: string; digest: string; approverDid: string }, doing: string) => {
    requireOpen(doing);
    const { step } = evidenceOf(r, doing);
    const p = requireActiveParticipant(r.approverDid, 'approver');
    if (p.slashed) throw new HypervisorError('AGENT_SLASHED', `approver ${r.approverDid} was slashed; it may not approve or reject`);
    requireUnrestricted(r.approverDid, 'approver');
    if (r.approverDid === step.agentDid) throw new HypervisorError('SELF_APPROVAL', `approver ${r.approverDid} is the step's acting agent`);
    if (step.approvers.includes(r.approverDid)) throw new HypervisorError('DUPLICATE_APPROVAL', `${r.approverDid} already approved step ${r.stepId}`);
    if (step.rejectedBy) throw new HypervisorError('STEP_REJECTED', `step ${r.stepId} was rejected by ${step.rejectedBy.did}`);
    return step;
  };

  const wakeSaga = (saga: SagaRecord) => void wf.getExternalWorkflowHandle(saga.workflowId).signal(wakeSignal, {}).catch(() => undefined);

  wf.setHandler(approveUpdate, handle((raw) => {
    const req = request(ApprovalRequestSchema, raw, 'approve');
    const step = approverRules(req, 'approve');
    const { saga } = evidenceOf(req, 'approve');
    const signatures = acceptAuth('approve', raw, signedBy.approver(req));
    step.approvers.push(req.approverDid);
    // A signed approval is a receipt: the trail keeps what was signed, bound to this change (src/identity.ts).
    record(req.approverDid, [receiptChange('approve', req)!], undefined, signatures);
    wakeSaga(saga);
    return evidenceResult(saga, step);
  }), { validator: validator(ApprovalRequestSchema, 'approve', (r: { sagaId: string; stepId: string; digest: string; approverDid: string }) => { approverRules(r, 'approve'); }, signedBy.approver), description: MESSAGES.approve.description });

  wf.setHandler(rejectUpdate, handle((raw) => {
    const req = request(RejectionRequestSchema, raw, 'reject');
    const step = approverRules(req, 'reject');
    const { saga } = evidenceOf(req, 'reject');
    const signatures = acceptAuth('reject', raw, signedBy.approver(req));
    step.rejectedBy = { did: req.approverDid, reason: req.reason };
    record(req.approverDid, [receiptChange('reject', req)!], undefined, signatures);
    wakeSaga(saga);
    return evidenceResult(saga, step);
  }), { validator: validator(RejectionRequestSchema, 'reject', (r: { sagaId: string; stepId: string; digest: string; approverDid: string }) => { approverRules(r, 'reject'); }, signedBy.approver), description: MESSAGES.reject.description });

  const witnessRules = (r: { sagaId: string; stepId: string; digest: string; witnessDid: string }) => {
    requireOpen('witness');
    const { step } = evidenceOf(r, 'witness');
    requireSre(r.witnessDid, 'witness');
    if (r.witnessDid === step.agentDid) throw new HypervisorError('SELF_APPROVAL', `witness ${r.witnessDid} is the step's acting agent`);
    if (step.witness) throw new HypervisorError('DUPLICATE_APPROVAL', `step ${r.stepId} is already witnessed by ${step.witness}`);
    return step;
  };
  wf.setHandler(witnessUpdate, handle((raw) => {
    const req = request(WitnessRequestSchema, raw, 'witness');
    const step = witnessRules(req);
    const { saga } = evidenceOf(req, 'witness');
    const signatures = acceptAuth('witness', raw, signedBy.witness(req));
    step.witness = req.witnessDid;
    record(req.witnessDid, [receiptChange('witness', req)!], undefined, signatures);
    wakeSaga(saga);
    return evidenceResult(saga, step);
  }), { validator: validator(WitnessRequestSchema, 'witness', witnessRules, signedBy.witness), description: MESSAGES.witness.description });

  /** The session's decision for a step now: what a saga's activity reads (SPEC §11.2). */
  function stepGrant(raw: StepRef): StepGrant {
    const ref = governed(() => parse(StepRefSchema, raw, 'stepGrant'));
    return grantFor(governed(() => evidenceOf(ref, 'grant a step')).step);
  }

  function grantFor(step: StepEvidence): StepGrant {
    const approvals = countedApprovers(step);
    const quorum = st.session.config.consensusQuorum;
    const witness = step.witness && st.session.config.sreWitnesses.includes(step.witness) ? step.witness : null;
    const agent = agentView(step.agentDid) ?? null;
    const action = actionView(step.actionId) ?? null;
    let decision: GateDecision = gateStep({ agent: agent ?? undefined, action: action ?? undefined, sessionState: st.session.state, hasConsensus: approvals.length >= quorum, hasSreWitness: witness !== null, now: Date.now() });
    if (step.rejectedBy) {
      decision = { ...decision, allowed: false, waitFor: 'none', reason: `rejected by ${step.rejectedBy.did}: ${step.rejectedBy.reason}`, rule: 'rejected' };
    }
    return { decision, agent, action, approvals, quorum, witness, rejectedBy: step.rejectedBy, step: { agentDid: step.agentDid, digest: step.digest }, retryAfterMs: null };
  }

  // A saga's step its start did not lease: the session decides, and leases it when the gate allows (SPEC §12).
  const claimRules = (r: StepRef) => { requireOpen('claim a step'); evidenceOf(r, 'claim a step'); };
  wf.setHandler(claimStepUpdate, handle((raw) => {
    const ref = parse(StepRefSchema, raw, 'claimStep');
    claimRules(ref);
    const { saga, step } = evidenceOf(ref, 'claim a step');
    const grant = grantFor(step);
    if (!grant.decision.allowed) return grant;
    const refusal = leaseStep(saga, step);
    if (refusal === null || refusal === 'skip') return grant;
    return {
      ...grant, retryAfterMs: refusal.retryAfterMs,
      decision: { ...grant.decision, allowed: false, waitFor: 'none', rule: refusal.code === 'RATE_LIMITED' ? 'rate_limited' : 'budget_exhausted', reason: refusal.reason },
    };
  }), { validator: validator(StepRefSchema, 'claimStep', claimRules), description: MESSAGES.claimStep.description });

  // ── Controls (SPEC §12) ───────────────────────────────────────────────────
  const controlResult = (agentDid: string, kind: ControlResult['kind'], until: number | null, sagasHolding: string[] = [], handedOff: ControlResult['handedOff'] = []): ControlResult =>
    ({ agentDid, kind, until, sagasHolding, handedOff });
  const sreRules = (r: { agentDid: string; sreDid: string }, doing: string) => {
    requireOpen(doing);
    if (!participantOf(st.session, r.agentDid)) throw new HypervisorError('AGENT_NOT_FOUND', `cannot ${doing}: ${r.agentDid} is not a participant of session ${sessionId}`, { did: r.agentDid });
    requireSre(r.sreDid, 'SRE');
    if (r.sreDid === r.agentDid) throw new HypervisorError('NOT_SRE_WITNESS', `an SRE may not ${doing} itself`);
  };
  const notKilled = (did: string, doing: string) => {
    if (controls.level(did, Date.now()) === 2) throw new HypervisorError('AGENT_KILLED', `cannot ${doing}: ${did} was killed in session ${sessionId}; a kill is final`, { did });
  };

  const quarantineRules = (r: { agentDid: string; sreDid: string }) => { sreRules(r, 'quarantine'); notKilled(r.agentDid, 'quarantine'); };
  wf.setHandler(quarantineUpdate, handle((raw) => {
    const req = request(QuarantineRequestSchema, raw, 'quarantine');
    quarantineRules(req);
    const signatures = acceptAuth('quarantine', raw, signedBy.sre(req));
    const now = Date.now();
    const until = now + (req.ttlSeconds ?? controls.config.quarantineTtlSeconds) * 1000;
    impose(req.agentDid, { kind: 'quarantine', since: now, until, reason: req.reason, by: req.sreDid, substitute: null }, req.sreDid, signatures);
    return controlResult(req.agentDid, 'quarantine', until, runningSagas().filter((g) => g.agentDids.includes(req.agentDid)).map((g) => g.sagaId));
  }), { validator: validator(QuarantineRequestSchema, 'quarantine', quarantineRules, signedBy.sre), description: MESSAGES.quarantine.description });

  const releaseAgentRules = (r: { agentDid: string; sreDid: string }) => {
    sreRules(r, 'release');
    notKilled(r.agentDid, 'release');
    if (!controls.restrictionOf(r.agentDid, Date.now())) throw new HypervisorError('NOT_QUARANTINED', `${r.agentDid} is not quarantined in session ${sessionId}`, { did: r.agentDid });
  };
  wf.setHandler(releaseUpdate, handle((raw) => {
    const req = request(ReleaseRequestSchema, raw, 'release');
    releaseAgentRules(req);
    const signatures = acceptAuth('release', raw, signedBy.sre(req));
    const lifted = controls.release(req.agentDid)!;
    record(req.sreDid, [{ path: `/controls/${req.agentDid}`, operation: 'delete', contentHash: contentHash({ released: req.reason ?? 'released', kind: lifted.kind }), previousHash: contentHash(lifted) }], undefined, signatures);
    refreshSearchAttributes();
    return controlResult(req.agentDid, 'released', null);
  }), { validator: validator(ReleaseRequestSchema, 'release', releaseAgentRules, signedBy.sre), description: MESSAGES.release.description });

  const killRules = (r: { agentDid: string; sreDid: string; substituteDid?: string }) => {
    sreRules(r, 'kill');
    notKilled(r.agentDid, 'kill');
    if (r.substituteDid !== undefined) {
      if (r.substituteDid === r.agentDid) throw new HypervisorError('INVALID_INPUT', 'invalid kill: substituteDid: the killed agent cannot substitute for itself');
      requireActiveParticipant(r.substituteDid, 'substitute');
      requireUnrestricted(r.substituteDid, 'substitute');
    }
  };
  wf.setHandler(killUpdate, handle(async (raw) => {
    const req = request(KillRequestSchema, raw, 'kill');
    killRules(req);
    const signatures = acceptAuth('kill', raw, signedBy.sre(req));
    const did = req.agentDid;
    const restriction: Restriction = { kind: 'kill', since: Date.now(), until: null, reason: req.reason, by: req.sreDid, substitute: req.substituteDid ?? null };
    controls.restrict(did, restriction);
    // Its remaining steps become the substitute's, bound to a new digest; the substitute claims each (gate, rate, budget).
    const handedOff: ControlResult['handedOff'] = [];
    const holding = runningSagas().filter((g) => g.agentDids.includes(did));
    for (const saga of holding) {
      for (const step of saga.steps) {
        if (step.agentDid !== did) continue;
        controls.settle(stepKey(saga.workflowId, step.stepId), false);
        step.leased = false;
        if (!req.substituteDid) continue;
        step.handedFrom = { agentDid: did, digest: step.digest };
        step.agentDid = req.substituteDid;
        step.digest = handoffDigest(step.digest, req.substituteDid);
        step.approvers = [];
        step.witness = null;
        step.rejectedBy = null;
        handedOff.push({ sagaId: saga.sagaId, stepId: step.stepId, agentDid: step.agentDid, digest: step.digest });
      }
    }
    // Its children lose what they held through it.
    const following = childrenOf(did).flatMap((child) => capRing(st.session, child, 3));
    refreshSearchAttributes();
    restrictSagas([did]);
    applyRingChanges(following, `kill of ${did}`);
    // The kill is recorded once every running saga of the agent holds it (its step in flight cancelled):
    // no step of the agent starts after this delta (SPEC §12).
    const held = holding.length > 0 ? await integrations.awaitHold({ workflowIds: holding.map((g) => g.workflowId), did }) : [];
    const sagasHolding = holding.filter((g) => held.includes(g.workflowId)).map((g) => g.sagaId);
    if (isOpen()) {
      record(req.sreDid, [{ path: `/controls/${did}`, operation: 'add', contentHash: contentHash({ ...restriction, handedOff, sagasHolding }) }], undefined, signatures);
    }
    return controlResult(did, 'kill', null, sagasHolding, handedOff);
  }), { validator: validator(KillRequestSchema, 'kill', killRules, signedBy.sre), description: MESSAGES.kill.description });

  function elevationView(e: Elevation): ElevationView {
    return {
      elevationId: e.elevationId, agentDid: e.agentDid, ring: e.ring, ttlSeconds: e.ttlSeconds, justification: e.justification, digest: e.digest,
      requestedAt: e.requestedAt, approvals: e.approvers.filter((d) => countsAsApprover(d, e.agentDid)).length, quorum: st.session.config.consensusQuorum,
      activeFrom: e.activeFrom, until: e.until, state: e.activeFrom === null ? 'requested' : 'active',
    };
  }
  const elevationRules = (r: { agentDid: string; ring: 1 | 2 }) => {
    requireOpen('request an elevation');
    const p = requireActiveParticipant(r.agentDid);
    if (p.slashed) throw new HypervisorError('AGENT_SLASHED', `agent ${r.agentDid} was slashed in session ${sessionId}; it may not be elevated`, { did: r.agentDid });
    requireUnrestricted(r.agentDid, 'agent');
    if ((p.ringCap ?? 0) > r.ring) throw new HypervisorError('RING_VIOLATION', `agent ${r.agentDid} is capped at ring ${p.ringCap}: no elevation lifts a cap`, { did: r.agentDid });
    const held = controls.elevations.get(r.agentDid);
    if (held) throw new HypervisorError('ELEVATION_EXISTS', `agent ${r.agentDid} already has elevation ${held.elevationId} (${held.activeFrom === null ? 'requested' : 'active'}); one per agent`, { elevationId: held.elevationId });
  };
  wf.setHandler(requestElevationUpdate, handle((raw) => {
    const req = request(ElevationRequestSchema, raw, 'requestElevation');
    elevationRules(req);
    const signatures = acceptAuth('requestElevation', raw, signedBy.agent(req));
    const elevationId = `elevation-${++controls.elevationCount}`;
    const ttlSeconds = req.ttlSeconds ?? controls.config.elevationTtlSeconds;
    const e: Elevation = {
      elevationId, agentDid: req.agentDid, ring: req.ring, ttlSeconds, justification: req.justification,
      digest: elevationDigest({ sessionId, elevationId, agentDid: req.agentDid, ring: req.ring, ttlSeconds, justification: req.justification }),
      requestedAt: Date.now(), approvers: [], activeFrom: null, until: null,
    };
    controls.elevations.set(req.agentDid, e);
    record(req.agentDid, [{ path: `/elevations/${elevationId}`, operation: 'add', contentHash: contentHash(e) }], undefined, signatures);
    return elevationView(e);
  }), { validator: validator(ElevationRequestSchema, 'requestElevation', elevationRules, signedBy.agent), description: MESSAGES.requestElevation.description });

  const elevationOf = (r: { agentDid: string; elevationId: string; digest?: string }, doing: string) => {
    const e = controls.elevations.get(r.agentDid);
    if (!e || e.elevationId !== r.elevationId) throw new HypervisorError('ELEVATION_NOT_FOUND', `cannot ${doing}: ${r.agentDid} has no elevation ${r.elevationId} in session ${sessionId}`);
    if (r.digest !== undefined && r.digest !== e.digest) throw new HypervisorError('DIGEST_MISMATCH', `cannot ${doing}: digest is not elevation ${e.elevationId}'s (${e.digest})`);
    return e;
  };
  const approveElevationRules = (r: { agentDid: string; elevationId: string; digest: string; approverDid: string }) => {
    requireOpen('approve an elevation');
    const e = elevationOf(r, 'approve an elevation');
    if (e.activeFrom !== null) throw new HypervisorError('DUPLICATE_APPROVAL', `elevation ${e.elevationId} is already active`);
    const p = requireActiveParticipant(r.approverDid, 'approver');
    if (p.slashed) throw new HypervisorError('AGENT_SLASHED', `approver ${r.approverDid} was slashed; it may not approve`);
    requireUnrestricted(r.approverDid, 'approver');
    if (r.approverDid === r.agentDid) throw new HypervisorError('SELF_APPROVAL', `approver ${r.approverDid} is the agent asking for the elevation`);
    if (e.approvers.includes(r.approverDid)) throw new HypervisorError('DUPLICATE_APPROVAL', `${r.approverDid} already approved elevation ${e.elevationId}`);
  };
  wf.setHandler(approveElevationUpdate, handle((raw) => {
    const req = request(ElevationApprovalSchema, raw, 'approveElevation');
    approveElevationRules(req);
    const signatures = acceptAuth('approveElevation', raw, signedBy.approver(req));
    const e = elevationOf(req, 'approve an elevation');
    e.approvers.push(req.approverDid);
    record(req.approverDid, [{ path: `/elevations/${e.elevationId}/approvals/${req.approverDid}`, operation: 'add', contentHash: contentHash({ digest: e.digest }) }], undefined, signatures);
    if (e.approvers.filter((d) => countsAsApprover(d, e.agentDid)).length >= st.session.config.consensusQuorum) {
      const now = Date.now();
      e.activeFrom = now;
      e.until = now + e.ttlSeconds * 1000;
      armExpiry(e.until);
      record(HYPERVISOR_DID, [{ path: `/elevations/${e.elevationId}`, operation: 'modify', contentHash: contentHash({ ring: e.ring, activeFrom: e.activeFrom, until: e.until }) }]);
    }
    return elevationView(e);
  }), { validator: validator(ElevationApprovalSchema, 'approveElevation', approveElevationRules, signedBy.approver), description: MESSAGES.approveElevation.description });

  const revokeRules = (r: { agentDid: string; byDid: string }) => {
    requireOpen('revoke an elevation');
    if (!controls.elevations.has(r.agentDid)) throw new HypervisorError('ELEVATION_NOT_FOUND', `${r.agentDid} has no elevation in session ${sessionId}`);
    if (r.byDid !== r.agentDid) requireSre(r.byDid, 'revoker');
  };
  wf.setHandler(revokeElevationUpdate, handle((raw) => {
    const req = request(RevokeElevationRequestSchema, raw, 'revokeElevation');
    revokeRules(req);
    const signatures = acceptAuth('revokeElevation', raw, signedBy.revoker(req));
    const e = controls.elevations.get(req.agentDid)!;
    controls.elevations.delete(req.agentDid);
    record(req.byDid, [{ path: `/elevations/${e.elevationId}`, operation: 'delete', contentHash: contentHash({ revoked: req.reason ?? 'revoked' }), previousHash: contentHash(e) }], undefined, signatures);
    restrictSagas([req.agentDid]);
    return { ...elevationView(e), state: 'revoked' as const };
  }), { validator: validator(RevokeElevationRequestSchema, 'revokeElevation', revokeRules, signedBy.revoker), description: MESSAGES.revokeElevation.description });

  /**
   * A durable timer for a control's end (SPEC §12), started in the handler that set it: its command is
   * then issued before the update completes, whatever interceptors wrap the handler (a loop re-arming a
   * timer when woken would order its command by microtasks, which tracing changes). A timer of a control
   * released or revoked meanwhile finds nothing to end.
   */
  function armExpiry(until: number): void {
    void wf.sleep(Math.max(1, until - Date.now())).then(() => { if (isOpen()) expireControls(Date.now()); }, () => undefined);
  }

  /** What ended by now: quarantines released, elevations ended (SPEC §12). */
  function expireControls(now: number): void {
    const { released, expired } = controls.expire(now);
    for (const [did, r] of released) record(HYPERVISOR_DID, [{ path: `/controls/${did}`, operation: 'delete', contentHash: contentHash({ released: 'ttl', kind: r.kind }), previousHash: contentHash(r) }], now);
    for (const e of expired) record(HYPERVISOR_DID, [{ path: `/elevations/${e.elevationId}`, operation: 'delete', contentHash: contentHash({ expired: true, until: e.until }), previousHash: contentHash(e) }], now);
    if (released.length > 0) refreshSearchAttributes();
    if (expired.length > 0) restrictSagas(expired.map((e) => e.agentDid));
  }

  // ── Terminate ─────────────────────────────────────────────────────────────
  const terminateRules = () => {
    requireState('terminate', ['handshaking', 'active']);
    if (closing) throw new HypervisorError('SESSION_CLOSED', `session ${sessionId} is already terminating`, { state: 'terminating' });
  };
  wf.setHandler(terminateUpdate, handle(async (raw?: unknown) => {
    parse(NoArgumentSchema, raw, 'terminate');
    const signatures = acceptAuth('terminate', raw, controllers());
    // No new saga from here; the ones starting finish starting, so the close reaches every one of them.
    closing = true;
    await wf.condition(() => startsInFlight === 0);
    const now = Date.now();
    // Close first (SPEC §7 [resolved]): from here on every request that would add a delta is refused.
    const liabilitySnapshot = liabilityMatrix(st.liability, sessionId, now);
    const releasedBonds = beginTerminate(st.session, st.liability, now);
    const { report } = collectGarbage({ vfs: st.vfs, audit: st.audit, liabilitySnapshot: JSON.parse(JSON.stringify(liabilitySnapshot)), now, retentionDays: st.session.config.retentionDays });
    record(HYPERVISOR_DID, [
      { path: '/state', operation: 'modify', contentHash: contentHash('terminating') },
      ...releasedBonds.map((id) => ({ path: `/bonds/${id}`, operation: 'delete' as const })),
    ], undefined, signatures);
    const commitment = commitAudit(st.audit, Object.keys(st.session.participants), now);
    st.commitment = commitment;
    refreshSearchAttributes();
    // Running sagas learn at once that their session is closed: their next steps are denied.
    for (const saga of runningSagas()) void wf.getExternalWorkflowHandle(saga.workflowId).signal(restrictSignal, { agents: [], sessionState: 'terminating' }).catch(() => undefined);
    const anchor = await integrations.anchorCommitment({ ...commitment });
    commitment.anchorTarget = anchor.anchorTarget;
    commitment.anchorTxId = anchor.anchorTxId;
    // The trail and what termination leaves go to the store before the session archives (SPEC §7).
    await flushAll();
    if (fatal) throw fatal;
    await auditStore.storeSessionRecord({
      chain, sessionId, commitment, liabilitySnapshot: JSON.parse(JSON.stringify(liabilitySnapshot)), retainUntil: report.retainUntil, deltasPurgedAt: null,
    });
    archive(st.session, Date.now());
    terminated = { commitment, releasedBonds: releasedBonds.length, purgedFiles: report.vfsFilesPurged, retainUntil: report.retainUntil, liabilitySnapshot };
    refreshSearchAttributes();
    return terminated;
  }) as () => Promise<TerminateResult>, { validator: validator(NoArgumentSchema, 'terminate', terminateRules, controllers) as () => void, description: MESSAGES.terminate.description });

  const vfsAgent = (what: string, agentDid: string) => { requireOpen(what); requireActiveParticipant(agentDid); };
  registerVfsHandlers(st, {
    record: (agentDid, changes, signatures) => record(agentDid, changes, undefined, signatures),
    handle, refresh: refreshSearchAttributes,
    requireAgent: vfsAgent,
    accept: (what, raw, agentDid) => acceptAuth(what, raw, one(agentDid)),
    validate: (schema, what, rules) => validator(schema, what, (r: { agentDid: string }) => { vfsAgent(what, r.agentDid); rules(r as never); }, (r) => one(r.agentDid)),
    storeFile: async (content) => (await auditStore.storeFile({ content })).contentHash,
  });

  // ── Queries ───────────────────────────────────────────────────────────────
  wf.setHandler(summaryQuery, summary, { description: MESSAGES.summary.description });
  wf.setHandler(participantQuery, (did) => (typeof did === 'string' ? participantOf(st.session, did) ?? null : null), { description: MESSAGES.participant.description });
  wf.setHandler(liabilityQuery, () => liabilityMatrix(st.liability, sessionId, Date.now()), { description: MESSAGES.liabilityMatrix.description });
  wf.setHandler(auditQuery, () => ({
    sessionId, deltaCount: st.audit.turn, merkleRoot: auditMerkleRoot(st.audit), head: st.audit.head, stored: st.audit.stored, pending: st.audit.deltas.slice(),
  }), { description: MESSAGES.auditHead.description });
  wf.setHandler(sagasQuery, () => [...sagas.values()], { description: MESSAGES.sagas.description });
  wf.setHandler(stepGrantQuery, queryAnswer(stepGrant), { description: MESSAGES.stepGrant.description });

  // ── Lifetime ──────────────────────────────────────────────────────────────
  refreshSearchAttributes();
  // Controls a previous run carried over end by timers of this run.
  for (const t of [...controls.restrictions.values(), ...controls.elevations.values()].map((c) => c.until)) if (t !== null) armExpiry(t);
  // Sagas a previous run started: their completion went to that run, so read them by id.
  const wakeCarriedSagas = () => {
    for (const saga of runningSagas()) {
      // Ask each to wake this run when it ends; then read it, which finds whoever ended before the ask.
      void wf.getExternalWorkflowHandle(saga.workflowId).signal(wakeSignal, { sessionContinued: true })
        .catch(() => undefined)
        .then(() => readOutcome(saga.sagaId))
        .catch(() => undefined);
    }
  };
  if (proving) void wf.condition(() => trailStarted || fatal !== undefined).then(() => { if (!fatal) wakeCarriedSagas(); });
  else if (input.carried) wakeCarriedSagas();

  const wantsToEnd = () => terminated !== undefined || fatal !== undefined || updatesThisRun >= maxUpdatesPerRun || wf.workflowInfo().continueAsNewSuggested;
  // SPEC §1: a bond's expiry takes effect at its time, by a durable timer.
  for (;;) {
    const seen = bondsVersion;
    const next = isOpen() ? nextBondExpiry(st.liability, sessionId, Date.now()) : null;
    const wake = () => wantsToEnd() || bondsVersion !== seen;
    const woke = next === null ? await wf.condition(wake).then(() => true) : await wf.condition(wake, Math.max(1, next - Date.now()));
    if (wantsToEnd()) break;
    if (!woke && isOpen()) {
      bondsVersion++;
      const expired = pruneExpired(st.liability, sessionId, Date.now());
      for (const id of expired) record(HYPERVISOR_DID, [{ path: `/bonds/${id}`, operation: 'delete', contentHash: contentHash({ expired: true }) }]);
      const vouchees = expired.map((id) => ownGet(st.liability.bonds, id)!.vouchee);
      applyRingChanges(refreshRings(st.session, st.liability, Date.now()), 'bond expiry', vouchees);
    }
  }
  // The next run carries the head and the frontier, not the trail: store every delta, including those
  // of requests that arrive meanwhile, and continue with nothing in between the last check and the new run.
  windingDown = terminated === undefined;
  for (;;) {
    await wf.condition(() => fatal !== undefined || (wf.allHandlersFinished() && background === 0));
    if (fatal) throw fatal;
    if (terminated) return terminated;
    if (st.audit.deltas.length === 0 && !flushing) break;
    await flushAll();
  }
  st.runs++;
  st.sagas = [...sagas.values()];
  st.nonces = [...nonces];
  st.controls = controls.toState();
  st.parents = [...parents];
  return wf.continueAsNew<typeof sessionWorkflow>({ sessionId, creatorDid: input.creatorDid, maxUpdatesPerRun, carried: st });
}
