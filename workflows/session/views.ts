/**
 * Views: what the session tells its sagas (an agent's and an action's view), pushes that take privilege away,
 * ring changes, the search attributes and the Web UI card, the summary.
 */
import * as wf from '@temporalio/workflow';
import { ownGet } from '../../src/core/common';
import { auditMerkleRoot, type AuditState } from '../../src/core/audit';
import { sessionBonds } from '../../src/core/liability';
import { isKill, type Elevation } from '../../src/core/controls';
import { participantOf } from '../../src/core/session';
import { capRing, gateView, type RingChange } from '../../src/core/sessionRings';
import { checkApprover } from '../../src/core/approvers';
import { type ActionView, type AgentView } from '../../src/contract';
import { restrictSignal } from '../definitions';
import {
  HvAgentDids,
  HvQuarantined,
  HvSessionId,
  HvSessionState,
  indexedAgentDids,
} from '../../src/contract/searchAttributes';
import type {
  ControlsSummary,
  ElevationView,
  SagaRecord,
  SessionSummary,
  StepEvidence,
} from '../../src/contract/sessionTypes';
import { ringAssigned } from '../observe';
import { HYPERVISOR_DID, contentHash, type SessionContext, record, childrenOf } from './context';
import { logDropped } from '../failures';
import { patched, upsertSearchAttributes } from '../ownRun';

export function agentView(ctx: SessionContext, did: string): AgentView | undefined {
  const v = gateView(ctx.st.session, ctx.st.liability, did, Date.now());
  if (!v) return undefined;
  const now = Date.now();
  const restriction = ctx.controls.level(did, now);
  const elevation = ctx.controls.activeElevation(did, now);
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
export function effectiveRing(ctx: SessionContext, did: string): 0 | 1 | 2 | 3 {
  const p = participantOf(ctx.st.session, did);
  const e = ctx.controls.activeElevation(did, Date.now());
  return Math.min(p?.ring ?? 3, e?.ring ?? 3) as 0 | 1 | 2 | 3;
}

export function actionView(ctx: SessionContext, actionId: string): ActionView | undefined {
  const e = ownGet(ctx.st.session.registry.entries, actionId);
  if (!e) return undefined;
  return {
    actionId,
    readOnly: e.readOnly,
    admin: e.admin,
    reversibility: e.level,
    omega: e.riskWeight,
    executeApi: e.executeApi,
    undoApi: e.undoApi,
  };
}

export const runningSagas = (ctx: SessionContext) => [...ctx.sagas.values()].filter((s) => s.state === 'running');

/** SPEC §11.3: tell running sagas what was taken away from these agents. */
export function restrictSagas(ctx: SessionContext, dids: readonly string[]): void {
  if (dids.length === 0) return;
  const touched = new Set(dids);
  for (const saga of runningSagas(ctx)) {
    const agents = saga.agentDids
      .filter((d) => touched.has(d))
      .map((d) => agentView(ctx, d))
      .filter((v): v is AgentView => v !== undefined);
    if (agents.length === 0) continue;
    void wf
      .getExternalWorkflowHandle(saga.workflowId)
      .signal(restrictSignal, { agents })
      .catch(logDropped('a push of restrictions to a saga (it asks the session before each step)'));
  }
}

/**
 * N4: an elevation ends with a slash, a kill, a quarantine or a demotion of its agent — a delta — so a
 * privilege granted on the agent's standing does not outlive it (behind a patch: older histories replay).
 */
export function endElevation(ctx: SessionContext, did: string, why: string): void {
  const e = ctx.controls.elevations.get(did);
  if (!e || !patched('elevation-ends-with-restriction')) return;
  ctx.controls.elevations.delete(did);
  record(ctx, HYPERVISOR_DID, [
    {
      path: `/elevations/${e.elevationId}`,
      operation: 'delete',
      contentHash: contentHash({ ended: why }),
      previousHash: contentHash(e),
    },
  ]);
}

export function applyRingChanges(
  ctx: SessionContext,
  changes: RingChange[],
  cause: string,
  touched: readonly string[] = [],
): void {
  // SPEC §12: a delegated child is never more privileged than its parent's ring + 1 — it follows demotions.
  const following = changes
    .filter((c) => c.kind === 'demotion')
    .flatMap((c) =>
      childrenOf(ctx, c.did).flatMap((child) => capRing(ctx.st.session, child, Math.min(3, c.to + 1) as 0 | 1 | 2 | 3)),
    );
  if (following.length > 0) changes = [...changes, ...following];
  for (const c of changes) {
    ringAssigned(c.to, c.kind);
    record(ctx, HYPERVISOR_DID, [
      {
        path: `/participants/${c.did}/ring`,
        operation: 'modify',
        contentHash: contentHash({ ring: c.to, sigmaEff: c.sigmaEff, cause }),
        previousHash: contentHash({ ring: c.from }),
      },
    ]);
    if (c.kind === 'demotion') endElevation(ctx, c.did, `demoted to ring ${c.to}: ${cause}`);
  }
  refreshSearchAttributes(ctx);
  restrictSagas(ctx, [...new Set([...changes.map((c) => c.did), ...touched])]);
}

export function refreshSearchAttributes(ctx: SessionContext): void {
  const agents = Object.keys(ctx.st.session.participants).sort();
  const quarantined = ctx.controls.quarantined(Date.now());
  if (quarantined.length > 0) ctx.quarantineIndexed = true;
  const key = `${ctx.st.session.state}|${agents.join(',')}${ctx.quarantineIndexed ? `|q:${quarantined.join(',')}` : ''}`;
  if (key !== ctx.indexed) {
    ctx.indexed = key;
    upsertSearchAttributes([
      { key: HvSessionId, value: ctx.sessionId },
      { key: HvSessionState, value: ctx.st.session.state },
      { key: HvAgentDids, value: indexedAgentDids(agents) },
      ...(ctx.quarantineIndexed ? [{ key: HvQuarantined, value: indexedAgentDids(quarantined) }] : []),
    ]);
  }
  wf.setCurrentDetails(currentDetails(ctx));
}

/**
 * The trail's Merkle root, hashed once per append: every saga's outcome sets the session's details (settle:
 * currentDetails), and the root changes only when a delta is appended — which counts in its accumulator, mutated
 * in place or replaced, never changed otherwise.
 */
const roots = new WeakMap<AuditState['merkle'], { count: number; root: string | null }>();
function merkleRootOf(audit: AuditState): string | null {
  const known = roots.get(audit.merkle);
  if (known?.count === audit.merkle.count) return known.root;
  const root = auditMerkleRoot(audit);
  roots.set(audit.merkle, { count: audit.merkle.count, root });
  return root;
}

export function summary(ctx: SessionContext): SessionSummary {
  return {
    sessionId: ctx.sessionId,
    state: ctx.st.session.state,
    consistency: ctx.st.session.config.consistency,
    config: ctx.st.session.config,
    participants: Object.values(ctx.st.session.participants).map((p) => ({
      did: p.did,
      ring: p.ring,
      sigmaRaw: p.sigmaRaw,
      sigmaEff: p.sigmaEff,
      active: p.active,
      historyStatus: p.historyStatus,
      slashed: p.slashed ?? false,
      ringCap: p.ringCap ?? 0,
    })),
    activeBonds: sessionBonds(ctx.st.liability, ctx.sessionId, Date.now()).length,
    deltaCount: ctx.st.audit.turn,
    merkleRoot: merkleRootOf(ctx.st.audit),
    sagas: [...ctx.sagas.values()],
    files: Object.keys(ctx.st.vfs.files).length,
    runs: ctx.st.runs,
    commitment: ctx.st.commitment,
    controls: controlsSummary(ctx),
  };
}

export function controlsSummary(ctx: SessionContext): ControlsSummary {
  const now = Date.now();
  const dids = Object.keys(ctx.st.session.participants);
  return {
    restricted: [...ctx.controls.restrictions]
      .filter(([d]) => ctx.controls.level(d, now) > 0)
      .map(([did, r]) => ({ did, ...r })),
    elevations: [...ctx.controls.elevations.values()].map((e) => elevationView(ctx, e)),
    delegations: [...ctx.parents].map(([child, parent]) => ({ child, parent })),
    spent: {
      session: ctx.controls.sessionUsage().spent,
      agents: dids
        .map((did) => ({ did, ...ctx.controls.usage(did) }))
        .filter((a) => a.spent.calls + a.reserved.calls > 0),
    },
  };
}

export function currentDetails(ctx: SessionContext): string {
  const s = summary(ctx);
  const rows = s.participants.map(
    (p) =>
      `| ${p.did} | ${p.ring} | ${p.sigmaEff.toFixed(3)} | ${p.active ? 'yes' : 'left'}${p.slashed ? ' · slashed' : ''} |`,
  );
  const list = s.sagas.slice(-20).map((g) => `| ${g.sagaId} | ${g.state} |`);
  const restricted = s.controls.restricted.map(
    (r) =>
      `**${isKill(r) ? 'Killed' : 'Quarantined'}:** ${r.did}${r.until ? ` until ${new Date(r.until).toISOString()}` : ''} — ${r.reason}`,
  );
  return [
    `## Session ${ctx.sessionId} — ${s.state}`,
    `Consistency **${s.consistency}** · ${s.deltaCount} deltas · Merkle root \`${s.merkleRoot ?? '—'}\``,
    ...(restricted.length ? ['', ...restricted] : []),
    '',
    '| agent | ring | σ_eff | active |',
    '|---|---|---|---|',
    ...(rows.length ? rows : ['| — | | | |']),
    '',
    ...(list.length ? ['| saga | state |', '|---|---|', ...list] : ['No ctx.sagas yet.']),
  ].join('\n');
}

/**
 * Why this DID does not count as an approver of a request by `requesterDid` made at `requestedAt`, now, or
 * null (SPEC §11.5, §11.9, §12; the rule is src/session.ts checkApprover, for steps and elevations alike).
 */
export const approverRefusal = (ctx: SessionContext, d: string, requesterDid: string, requestedAt: number) =>
  checkApprover(ctx.st.session, d, { requesterDid, requestedAt, restriction: ctx.controls.level(d, Date.now()) });
/** Approvers that count now: checkApprover holds for them at this moment. */
export const countsAsApprover = (ctx: SessionContext, d: string, requesterDid: string, requestedAt: number) =>
  approverRefusal(ctx, d, requesterDid, requestedAt) === null;
/** A step's approvers that count now; the request is its saga's start. */
export const countedApprovers = (ctx: SessionContext, saga: SagaRecord, step: StepEvidence) =>
  step.approvers.filter((d) => countsAsApprover(ctx, d, step.agentDid, saga.startedAt));

export function elevationView(ctx: SessionContext, e: Elevation): ElevationView {
  return {
    elevationId: e.elevationId,
    agentDid: e.agentDid,
    ring: e.ring,
    ttlSeconds: e.ttlSeconds,
    justification: e.justification,
    digest: e.digest,
    requestedAt: e.requestedAt,
    approvals: e.approvers.filter((d) => countsAsApprover(ctx, d, e.agentDid, e.requestedAt)).length,
    quorum: ctx.st.session.config.consensusQuorum,
    activeFrom: e.activeFrom,
    until: e.until,
    state: e.activeFrom === null ? 'requested' : 'active',
  };
}
