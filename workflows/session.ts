/**
 * The session workflow: the source of truth for one session — participants
 * with their σ and ring, bonds, the reversibility registry, the VFS and the
 * audit chain. Every change arrives as an update (validated before it enters
 * history) and is recorded as a delta in the hash chain.
 */
import * as wf from '@temporalio/workflow';
import type * as activities from '../activities';
import { parse } from '../src/common';
import { HypervisorError } from '../src/errors';
import { appendDelta, auditMerkleRoot, createAuditState, exportTrail, verifyChain, type ChangeInput } from '../src/audit';
import { canonicalJson, sha256Hex } from '../src/hash';
import { collectGarbage, commitAudit } from '../src/commitment';
import { cacheTrustScore, cachedTrust, createDriftHistoryState, createTrustCache, invalidateTrust, recordDriftCheck } from '../src/adapters';
import { createLiabilityState, liabilityMatrix, release, sessionBonds } from '../src/liability';
import { riskWeight } from '../src/reversibility';
import { gateStep } from '../src/gate';
import {
  activate, archive, beginTerminate, createSessionState, join, leave, refreshRings, slashInSession, vouchInSession,
  type RingChange,
} from '../src/session';
import { createVfsState } from '../src/vfs';
import {
  AgentRequestSchema, CheckActionRequestSchema, DriftReportSchema, JoinRequestSchema, ReleaseBondRequestSchema,
  SagaEscalationSchema, SagaEventSchema, SagaStartedSchema, SessionInputSchema, SlashRequestSchema,
  StartSagaRequestSchema, VouchRequestSchema, type RingView,
} from '../src/contract';
import {
  activateUpdate, auditQuery, checkActionUpdate, joinUpdate, leaveUpdate, liabilityQuery, participantQuery,
  releaseBondUpdate, reportDriftUpdate, ringViewSignal, sagaEscalatedSignal, sagaEventSignal, sagaStartedSignal,
  sagasQuery, sagaWorkflowId, slashUpdate, startSagaUpdate, summaryQuery, terminateUpdate, vouchUpdate,
} from './definitions';
import { governed, asFailure } from './failures';
import { HvAgentDids, HvSessionId, HvSessionState } from './searchAttributes';
import { sagaWorkflow } from './saga';
import { sagaStaticDetails } from './sagaDetails';
import type { SessionSummary, SessionWorkflowInput, SessionWorkflowState, TerminateResult, SlashResult } from './sessionTypes';
import { registerVfsHandlers } from './sessionVfs';

/** The hypervisor itself, as the author of deltas no agent caused (demotions, termination). */
export const HYPERVISOR_DID = 'did:hv:hypervisor';

const integrations = wf.proxyActivities<typeof activities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 3, initialInterval: '1 second', backoffCoefficient: 2 },
});

const contentHash = (value: unknown) => sha256Hex(canonicalJson(value));

function startState(input: SessionWorkflowInput): SessionWorkflowState {
  const v = governed(() => parse(SessionInputSchema, input, 'session input'));
  const now = Date.now();
  const session = governed(() => createSessionState({ sessionId: v.sessionId, config: v.config }, now));
  return {
    session,
    liability: createLiabilityState(),
    audit: createAuditState(v.sessionId),
    vfs: createVfsState(v.sessionId),
    trustCache: createTrustCache(),
    drift: createDriftHistoryState(),
    sagas: {},
    ringViewVersion: 0,
    decisions: 0,
    slashes: 0,
    commitment: null,
    runs: 1,
  };
}

/**
 * The state a previous run handed over. Only a run that continued from another
 * may carry state: from a client, `carried` is refused (INVALID_INPUT) rather
 * than trusted — or left to fail the workflow task over and over.
 */
function carriedState(input: SessionWorkflowInput | null | undefined): SessionWorkflowState | undefined {
  if (input?.carried === undefined) return undefined;
  if (!wf.workflowInfo().continuedFromExecutionRunId || typeof input.carried !== 'object' || input.carried === null) {
    throw wf.ApplicationFailure.nonRetryable('invalid session input: carried: only a session continuing as new carries state', 'INVALID_INPUT');
  }
  return input.carried;
}

export async function sessionWorkflow(input: SessionWorkflowInput): Promise<TerminateResult> {
  const st: SessionWorkflowState = carriedState(input) ?? startState(input);
  const maxUpdatesPerRun = input.maxUpdatesPerRun ?? 1000;
  const sessionId = st.session.sessionId;
  let updatesThisRun = 0;
  let terminated: TerminateResult | undefined;

  // ── Recording ─────────────────────────────────────────────────────────────
  function record(agentDid: string, changes: ChangeInput[]): void {
    if (!st.session.config.auditEnabled || changes.length === 0) return;
    appendDelta(st.audit, { deltaId: wf.uuid4(), sessionId, agentDid, at: Date.now(), changes });
  }

  function ringView(): RingView {
    const participants: RingView['participants'] = {};
    for (const p of Object.values(st.session.participants)) participants[p.did] = { ring: p.ring, sigmaEff: p.sigmaEff, active: p.active };
    const actions: RingView['actions'] = {};
    for (const e of Object.values(st.session.registry.entries)) actions[e.actionId] = { readOnly: e.readOnly, admin: e.admin, reversibility: e.level };
    return { version: st.ringViewVersion, participants, actions, sessionState: st.session.state };
  }

  /** Tell every running saga the session's new ring view (demotions reach them at once). */
  async function broadcastRingView(): Promise<void> {
    st.ringViewVersion++;
    const view = ringView();
    const running = Object.values(st.sagas).filter((s) => s.state === 'running' || s.state === 'compensating');
    await Promise.all(running.map((s) => wf.getExternalWorkflowHandle(s.workflowId).signal(ringViewSignal, view).catch(() => undefined)));
  }

  async function applyRingChanges(changes: RingChange[], cause: string): Promise<void> {
    for (const c of changes) {
      record(HYPERVISOR_DID, [{ path: `/participants/${c.did}/ring`, operation: 'modify', contentHash: contentHash({ ring: c.to, sigmaEff: c.sigmaEff, cause }), previousHash: contentHash({ ring: c.from }) }]);
    }
    refreshSearchAttributes();
    await broadcastRingView();
  }

  /** What the search attributes hold now; an upsert is a history event, so only a change is upserted. */
  let indexed = '';
  function refreshSearchAttributes(): void {
    const agents = Object.keys(st.session.participants).sort();
    const key = `${st.session.state}|${agents.join(',')}`;
    if (key !== indexed) {
      indexed = key;
      wf.upsertSearchAttributes([
        { key: HvSessionId, value: sessionId },
        { key: HvSessionState, value: st.session.state },
        { key: HvAgentDids, value: agents },
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
      })),
      activeBonds: sessionBonds(st.liability, sessionId, Date.now()).length,
      deltaCount: st.audit.deltas.length,
      merkleRoot: auditMerkleRoot(st.audit),
      sagas: Object.values(st.sagas),
      files: Object.keys(st.vfs.files).length,
      runs: st.runs,
      commitment: st.commitment,
    };
  }

  function currentDetails(): string {
    const s = summary();
    const rows = s.participants.map((p) => `| ${p.did} | ${p.ring} | ${p.sigmaEff.toFixed(3)} | ${p.active ? 'yes' : 'left'} |`);
    const sagas = s.sagas.map((g) => `| ${g.sagaId} | ${g.state} |`);
    return [
      `## Session ${sessionId} — ${s.state}`,
      `Consistency **${s.consistency}** · ${s.deltaCount} deltas · Merkle root \`${s.merkleRoot ?? '—'}\``,
      '',
      '| agent | ring | σ_eff | active |', '|---|---|---|---|', ...(rows.length ? rows : ['| — | | | |']),
      '',
      ...(sagas.length ? ['| saga | state |', '|---|---|', ...sagas] : ['No sagas yet.']),
    ].join('\n');
  }

  /** Updates run the rules; a rule's rejection fails the update (and only it) with its error code. */
  function handle<A extends unknown[], R>(fn: (...args: A) => Promise<R> | R) {
    return async (...args: A): Promise<R> => {
      updatesThisRun++;
      try {
        return await fn(...args);
      } catch (err) {
        throw asFailure(err);
      }
    };
  }

  const validate = (schema: Parameters<typeof parse>[0], what: string) => (arg: unknown) => {
    governed(() => parse(schema, arg, what));
  };

  // The creation is turn 1. Record it before any handler exists: an update that
  // arrived with the start runs as soon as its handler is set.
  if (!input.carried) {
    record(HYPERVISOR_DID, [{ path: '/', operation: 'add', contentHash: contentHash({ sessionId, config: st.session.config, creatorDid: input.creatorDid }) }]);
  }

  // ── Updates ───────────────────────────────────────────────────────────────
  wf.setHandler(joinUpdate, handle(async (raw) => {
    const req = parse(JoinRequestSchema, raw, 'join');
    // SPEC §3: the scorer's σ when σ_raw is absent; the lower of the two when both exist.
    // A regular activity, not a local one: with local activities, 20 concurrent joins
    // made SDK 1.24's replay fail (a nondeterminism error between update completions
    // and search-attribute upserts); with a regular activity they never did.
    let scoredSigma = cachedTrust(st.trustCache, req.agentDid, Date.now())?.sigma;
    if (scoredSigma === undefined) {
      const score = await integrations.scoreTrust(req.agentDid);
      if (score !== null) scoredSigma = cacheTrustScore(st.trustCache, req.agentDid, score, Date.now()).sigma;
    }
    const result = join(st.session, st.liability, { ...req, scoredSigma }, Date.now());
    const p = st.session.participants[req.agentDid]!;
    record(req.agentDid, [
      { path: `/participants/${req.agentDid}`, operation: 'add', contentHash: contentHash(p) },
      ...p.actions.map((a) => ({ path: `/registry/${a}`, operation: 'add' as const, contentHash: contentHash(st.session.registry.entries[a]) })),
    ]);
    refreshSearchAttributes();
    await broadcastRingView();
    return result;
  }), { validator: validate(JoinRequestSchema, 'join'), description: 'Join an agent (SPEC §3 handshake); returns its ring and σ_eff.' });

  wf.setHandler(activateUpdate, handle(() => {
    activate(st.session, Date.now());
    record(HYPERVISOR_DID, [{ path: '/state', operation: 'modify', contentHash: contentHash('active'), previousHash: contentHash('handshaking') }]);
    refreshSearchAttributes();
    return summary();
  }), { description: 'Move the session from handshaking to active (needs a participant).' });

  wf.setHandler(leaveUpdate, handle(async (raw) => {
    const { agentDid } = parse(AgentRequestSchema, raw, 'leave');
    const p = leave(st.session, agentDid, Date.now());
    record(agentDid, [{ path: `/participants/${agentDid}/active`, operation: 'modify', contentHash: contentHash(false), previousHash: contentHash(true) }]);
    refreshSearchAttributes();
    await broadcastRingView();
    return p;
  }), { validator: validate(AgentRequestSchema, 'leave'), description: 'Mark a participant inactive (it stays in the record).' });

  wf.setHandler(vouchUpdate, handle(async (raw) => {
    const req = parse(VouchRequestSchema, raw, 'vouch');
    const { bond, ringChanges } = vouchInSession(st.session, st.liability, req, Date.now(), wf.uuid4());
    record(req.voucher, [{ path: `/bonds/${bond.bondId}`, operation: 'add', contentHash: contentHash(bond) }]);
    await applyRingChanges(ringChanges, `vouch ${bond.bondId}`);
    return bond;
  }), { validator: validate(VouchRequestSchema, 'vouch'), description: 'A voucher bonds part of its σ for a vouchee (SPEC §4).' });

  wf.setHandler(releaseBondUpdate, handle(async (raw) => {
    const req = parse(ReleaseBondRequestSchema, raw, 'releaseBond');
    const existing = st.liability.bonds[req.bondId];
    if (!existing || existing.sessionId !== sessionId) throw new HypervisorError('BOND_NOT_FOUND', `bond ${req.bondId} is not a bond of session ${sessionId}`);
    const bond = release(st.liability, req.bondId, Date.now(), req.reason);
    record(bond.voucher, [{ path: `/bonds/${bond.bondId}`, operation: 'delete', previousHash: contentHash(existing) }]);
    await applyRingChanges(refreshRings(st.session, st.liability, Date.now(), [bond.vouchee]), `release ${bond.bondId}`);
    return bond;
  }), { validator: validate(ReleaseBondRequestSchema, 'releaseBond'), description: 'Release a bond before the session ends.' });

  wf.setHandler(checkActionUpdate, handle((raw) => {
    const req = parse(CheckActionRequestSchema, raw, 'checkAction');
    const view = ringView();
    const result = gateStep({ agent: view.participants[req.agentDid] as Parameters<typeof gateStep>[0]['agent'], action: view.actions[req.actionId], hasConsensus: false, hasSreWitness: false });
    const { waitFor: _ignored, ...decision } = result;
    st.decisions++;
    record(req.agentDid, [{ path: `/decisions/${st.decisions}`, operation: 'add', contentHash: contentHash({ ...req, ...decision }) }]);
    return decision;
  }), { validator: validate(CheckActionRequestSchema, 'checkAction'), description: 'May this agent run this action now? Records the decision.' });

  /** `severity` is what the trust scorer is told (SPEC §9: critical or high for drift). */
  async function slashAgent(agentDid: string, reason: string, omega: number, by: string, severity?: string): Promise<SlashResult> {
    st.slashes++;
    const result = slashInSession(st.session, st.liability, { vouchee: agentDid, reason, omega, slashId: `${sessionId}-slash-${st.slashes}` }, Date.now());
    for (const s of result.outcome.slashes) {
      record(by, [
        { path: `/slashes/${s.slashId}`, operation: 'add', contentHash: contentHash(s) },
        { path: `/participants/${s.vouchee}/sigma`, operation: 'modify', contentHash: contentHash(0), previousHash: contentHash(s.sigmaBefore) },
        ...s.clips.map((c) => ({ path: `/participants/${c.voucher}/sigma`, operation: 'modify' as const, contentHash: contentHash(c.after), previousHash: contentHash(c.before) })),
      ]);
    }
    await applyRingChanges(result.ringChanges, `slash of ${agentDid}`);
    // Tell the scorer; its cached score for the agent is stale now.
    invalidateTrust(st.trustCache, agentDid);
    await integrations.reportToTrustScorer({ agentDid, kind: 'slash', reason, ...(severity ? { severity } : {}) }).catch(() => undefined);
    return result;
  }

  wf.setHandler(slashUpdate, handle(async (raw) => {
    const req = parse(SlashRequestSchema, raw, 'slash');
    const omega = req.omega ?? 0.95;
    return slashAgent(req.agentDid, `${req.reason} (witnessed by ${req.witnessDid})`, omega, req.witnessDid);
  }), { validator: validate(SlashRequestSchema, 'slash'), description: 'Slash an agent (ring 0: needs an SRE witness DID); cascades to its vouchers.' });

  wf.setHandler(reportDriftUpdate, handle(async (raw) => {
    const req = parse(DriftReportSchema, raw, 'reportDrift');
    if (!st.session.participants[req.agentDid]?.active) {
      throw new HypervisorError('AGENT_NOT_FOUND', `agent ${req.agentDid} is not an active participant of session ${sessionId}`);
    }
    const drift = await integrations.measureDrift({ ...req, sessionId });
    const decision = recordDriftCheck(st.drift, { agentDid: req.agentDid, sessionId, drift, now: Date.now() });
    record(HYPERVISOR_DID, [{ path: `/drift/${req.agentDid}/${st.drift.byDid[req.agentDid]?.checks ?? 0}`, operation: 'add', contentHash: contentHash(decision) }]);
    if (decision.action === 'slash') {
      const slash = await slashAgent(req.agentDid, `behavioural drift ${decision.drift.toFixed(3)} (${decision.severity})`, decision.slashOmega ?? 0.95, HYPERVISOR_DID, decision.reportSeverity ?? undefined);
      return { decision, slash, ringChanges: slash.ringChanges };
    }
    if (decision.action === 'demote') {
      const p = st.session.participants[req.agentDid]!;
      const changes: RingChange[] = p.ring < 3 ? [{ did: p.did, from: p.ring, to: (p.ring + 1) as RingChange['to'], kind: 'demotion', sigmaEff: p.sigmaEff }] : [];
      for (const c of changes) p.ring = c.to;
      await applyRingChanges(changes, `drift ${decision.drift.toFixed(3)}`);
      return { decision, slash: null, ringChanges: changes };
    }
    return { decision, slash: null, ringChanges: [] };
  }), { validator: validate(DriftReportSchema, 'reportDrift'), description: 'Check an agent for behavioural drift: high → slash, medium → demote (SPEC §9).' });

  wf.setHandler(startSagaUpdate, handle(async (raw) => {
    const req = parse(StartSagaRequestSchema, raw, 'startSaga');
    if (st.session.state !== 'active') {
      throw new HypervisorError('INVALID_TRANSITION', `cannot start a saga in session ${sessionId} in state ${st.session.state}; sagas run in active sessions`);
    }
    const sagaId = req.sagaId ?? `saga-${Object.keys(st.sagas).length + 1}`;
    if (st.sagas[sagaId]) throw new HypervisorError('INVALID_INPUT', `saga ${sagaId} already exists in session ${sessionId}`);
    const workflowId = sagaWorkflowId(sessionId, sagaId);
    st.sagas[sagaId] = { sagaId, workflowId, description: req.description ?? null, state: 'running', startedAt: Date.now() };
    await wf.startChild(sagaWorkflow, {
      workflowId,
      args: [{ ...req, sessionId, sagaId, ringView: ringView() }],
      parentClosePolicy: 'ABANDON',
      staticSummary: `Saga ${sagaId} of session ${sessionId}${req.description ? `: ${req.description}` : ''}`,
      staticDetails: sagaStaticDetails(req.steps),
      typedSearchAttributes: [
        { key: HvSessionId, value: sessionId },
        { key: HvAgentDids, value: [...new Set(req.steps.map((s) => s.agentDid))].sort() },
      ],
    }).catch((err) => {
      // Most likely a saga of that id was started directly by a client already.
      delete st.sagas[sagaId];
      throw new HypervisorError('INVALID_INPUT', `saga ${sagaId} could not be started in session ${sessionId}: ${(err as Error).message}`);
    });
    record(HYPERVISOR_DID, [{ path: `/sagas/${sagaId}`, operation: 'add', contentHash: contentHash({ sagaId, workflowId, steps: req.steps.length }) }]);
    refreshSearchAttributes();
    return { sagaId, workflowId };
  }), { validator: validate(StartSagaRequestSchema, 'startSaga'), description: 'Start a saga of this session (a child workflow).' });

  wf.setHandler(terminateUpdate, handle(async () => {
    const now = Date.now();
    const liabilitySnapshot = liabilityMatrix(st.liability, sessionId, now);
    const releasedBonds = beginTerminate(st.session, st.liability, now);
    const { report } = collectGarbage({ vfs: st.vfs, audit: st.audit, liabilitySnapshot: JSON.parse(JSON.stringify(liabilitySnapshot)), now });
    const purgedFiles = report.vfsFilesPurged;
    record(HYPERVISOR_DID, [
      { path: '/state', operation: 'modify', contentHash: contentHash('terminating') },
      ...releasedBonds.map((id) => ({ path: `/bonds/${id}`, operation: 'delete' as const })),
    ]);
    const commitment = commitAudit(st.audit, Object.keys(st.session.participants), now);
    const anchor = await integrations.anchorCommitment({ ...commitment });
    commitment.anchorTarget = anchor.anchorTarget;
    commitment.anchorTxId = anchor.anchorTxId;
    st.commitment = commitment;
    archive(st.session, Date.now());
    // Running sagas learn at once that their session is closed: their next steps are denied.
    await broadcastRingView();
    terminated = { commitment, releasedBonds: releasedBonds.length, purgedFiles, retainUntil: report.retainUntil };
    refreshSearchAttributes();
    return terminated;
  }), { description: 'Terminate: release bonds, purge the VFS, commit the Merkle root, archive.' });

  registerVfsHandlers(st, { record, handle, validate, refresh: refreshSearchAttributes });

  // ── Signals from sagas ────────────────────────────────────────────────────
  wf.setHandler(sagaStartedSignal, async (raw) => {
    const s = SagaStartedSchema.safeParse(raw);
    if (!s.success) return;
    const known = st.sagas[s.data.sagaId];
    if (!known) {
      st.sagas[s.data.sagaId] = { sagaId: s.data.sagaId, workflowId: s.data.workflowId, description: s.data.description ?? null, state: 'running', startedAt: Date.now() };
      record(HYPERVISOR_DID, [{ path: `/sagas/${s.data.sagaId}`, operation: 'add', contentHash: contentHash(s.data) }]);
      refreshSearchAttributes();
    }
    await wf.getExternalWorkflowHandle(s.data.workflowId).signal(ringViewSignal, ringView()).catch(() => undefined);
  });

  wf.setHandler(sagaEventSignal, (raw) => {
    const parsed = SagaEventSchema.safeParse(raw);
    if (!parsed.success) return;
    const e = parsed.data;
    const saga = st.sagas[e.sagaId];
    if (e.kind === 'saga_state') {
      if (saga && e.sagaState) saga.state = e.sagaState;
      record(HYPERVISOR_DID, [{ path: `/sagas/${e.sagaId}/state`, operation: 'modify', contentHash: contentHash(e.sagaState ?? null) }]);
      refreshSearchAttributes();
      return;
    }
    const path = e.kind === 'ring_decision' ? `/sagas/${e.sagaId}/steps/${e.stepId}/gate` : `/sagas/${e.sagaId}/steps/${e.stepId}`;
    record(e.agentDid ?? HYPERVISOR_DID, [{ path, operation: 'modify', contentHash: contentHash(e) }]);
  });

  wf.setHandler(sagaEscalatedSignal, async (raw) => {
    const parsed = SagaEscalationSchema.safeParse(raw);
    if (!parsed.success) return;
    const e = parsed.data;
    if (!st.session.participants[e.agentDid] || st.session.state === 'archived') return;
    await slashAgent(e.agentDid, `saga ${e.sagaId} escalated at step ${e.stepId}: ${e.reason}`, riskWeight(st.session.registry, e.actionId), HYPERVISOR_DID);
  });

  // ── Queries ───────────────────────────────────────────────────────────────
  wf.setHandler(summaryQuery, summary, { description: 'The session: state, participants with ring and σ_eff, bonds, deltas, Merkle root, sagas.' });
  wf.setHandler(participantQuery, (did) => st.session.participants[did] ?? null, { description: 'One participant by DID.' });
  wf.setHandler(liabilityQuery, () => liabilityMatrix(st.liability, sessionId, Date.now()), { description: 'Who vouches for whom, exposure per voucher, cascade paths.' });
  wf.setHandler(auditQuery, () => ({ trail: exportTrail(st.audit), verification: verifyChain(st.audit.deltas) }), { description: 'Every delta with the chain verification result.' });
  wf.setHandler(sagasQuery, () => Object.values(st.sagas), { description: 'The sagas of this session and their states.' });

  // ── Lifetime ──────────────────────────────────────────────────────────────
  refreshSearchAttributes();
  await wf.condition(() => terminated !== undefined || updatesThisRun >= maxUpdatesPerRun || wf.workflowInfo().continueAsNewSuggested);
  await wf.condition(wf.allHandlersFinished);
  if (terminated) return terminated;
  st.runs++;
  return wf.continueAsNew<typeof sessionWorkflow>({ sessionId, creatorDid: input.creatorDid, maxUpdatesPerRun, carried: st });
}
