/**
 * Participants (SPEC §3–§4, §9): join, activate, leave, vouch, release a bond, check an action, slash, drift.
 */
import { ownGet, parse } from '../../src/core/common';
import { HypervisorError } from '../../src/core/errors';
import { cacheTrustScore, cachedTrust, invalidateTrust, recordDriftCheck } from '../../src/core/adapters';
import { release } from '../../src/core/liability';
import { gateStep } from '../../src/core/gate';
import { activate, leave, participantOf } from '../../src/core/session';
import { capRing, refreshRings } from '../../src/core/sessionRings';
import { slashInSession, vouchInSession } from '../../src/core/sessionLiability';
import { checkDeclarations, declarationSource, declaredActions, join } from '../../src/core/join';
import { acceptNonces, type DeltaSignature } from '../../src/core/identity';
import { DriftMeasureSchema, DriftReportSchema, type JoinRequestParsed } from '../../src/contract';
import type { SlashResult } from '../../src/contract/sessionTypes';
import { gateDecided, ringAssigned, slashed } from '../observe';
import { ATTR, RING_CAUSE, SLASH_CAUSE, type SlashCause } from '../../src/core/observability';
import {
  HYPERVISOR_DID,
  integrations,
  contentHash,
  recordedDecision,
  type SessionContext,
  requireOpen,
  record,
  requireState,
  requireActiveParticipant,
  requireSre,
  requireUnrestricted,
  bondOf,
} from './context';
import {
  agentView,
  actionView,
  restrictSagas,
  applyRingChanges,
  endElevation,
  refreshSearchAttributes,
  summary,
} from './views';
import { type Handlers, request } from './door';
import { noteRequests } from './controls';
import { logDropped } from '../failures';
import { patched, uuid4 } from '../ownRun';

/**
 * A delegated join speaks for the child and its parent: both sign. `firstFixed`: SPEC §11.8's rule for
 * declarations (a replay of a join recorded before it, behind the patch `declarations-fixed`, passes false).
 */
export function joinRules(ctx: SessionContext, req: JoinRequestParsed, doing: string, firstFixed = true): void {
  requireState(ctx, doing, ['handshaking', 'active']);
  if (req.delegatedBy !== undefined) {
    const parent = requireActiveParticipant(ctx, req.delegatedBy, 'parent');
    if (req.delegatedBy === req.agentDid)
      throw new HypervisorError('INVALID_INPUT', 'invalid join: delegatedBy: an agent cannot delegate to itself');
    if (parent.slashed)
      throw new HypervisorError(
        'AGENT_SLASHED',
        `parent ${req.delegatedBy} was slashed in session ${ctx.sessionId}; it may not delegate`,
        { did: req.delegatedBy },
      );
    requireUnrestricted(ctx, req.delegatedBy, 'parent');
  }
  const existing = participantOf(ctx.st.session, req.agentDid);
  if (existing || ctx.joining.has(req.agentDid)) {
    throw new HypervisorError(
      'DUPLICATE_AGENT',
      existing && !existing.active
        ? `agent ${req.agentDid} already joined session ${ctx.sessionId} and left; it may not rejoin`
        : `agent ${req.agentDid} is already in session ${ctx.sessionId}`,
      { did: req.agentDid },
    );
  }
  if (ctx.st.session.activeCount + ctx.joining.size >= ctx.st.session.config.maxParticipants) {
    throw new HypervisorError(
      'SESSION_FULL',
      `session ${ctx.sessionId} is full (${ctx.st.session.activeCount + ctx.joining.size} of ${ctx.st.session.config.maxParticipants} participants)`,
    );
  }
  // SPEC §11.4, one path for every declaration: the join's own actions or its manifest's.
  checkDeclarations(ctx.st.session, declaredActions(req), declarationSource(req), { firstFixed });
}

export const activateRules = (ctx: SessionContext) => {
  requireState(ctx, 'activate', ['handshaking']);
  if (ctx.st.session.activeCount < 1)
    throw new HypervisorError('INVALID_TRANSITION', `cannot activate session ${ctx.sessionId}: it has no participants`);
};

export const leaveRules = (ctx: SessionContext, r: { agentDid: string }) => {
  requireOpen(ctx, 'leave');
  requireActiveParticipant(ctx, r.agentDid);
};

export const vouchRules = (ctx: SessionContext, r: { voucher: string; vouchee: string }) => {
  requireState(ctx, 'vouch', ['handshaking', 'active']);
  requireActiveParticipant(ctx, r.voucher, 'voucher');
  requireUnrestricted(ctx, r.voucher, 'voucher');
  const vouchee = requireActiveParticipant(ctx, r.vouchee, 'vouchee');
  if (vouchee.slashed)
    throw new HypervisorError(
      'AGENT_SLASHED',
      `agent ${r.vouchee} was slashed in session ${ctx.sessionId}; nobody may vouch for it`,
      { did: r.vouchee },
    );
};

export const releaseRules = (ctx: SessionContext, r: { bondId: string }) => {
  requireOpen(ctx, 'release a bond');
  if (bondOf(ctx, r).releasedAt !== null)
    throw new HypervisorError('BOND_RELEASED', `bond ${r.bondId} was already released`);
};

export const checkActionRules = (ctx: SessionContext, r: { agentDid: string }) => {
  requireOpen(ctx, 'check an action');
  requireActiveParticipant(ctx, r.agentDid);
};

/** `severity` is what the trust scorer is told (SPEC §9: critical or high for drift). */
export async function slashAgent(
  ctx: SessionContext,
  agentDid: string,
  reason: string,
  omega: number,
  by: string,
  cause: SlashCause,
  severity?: string,
  signatures?: DeltaSignature[],
): Promise<SlashResult> {
  ctx.st.slashes++;
  const result = slashInSession(
    ctx.st.session,
    ctx.st.liability,
    { vouchee: agentDid, reason, omega, slashId: `${ctx.sessionId}-slash-${ctx.st.slashes}` },
    Date.now(),
  );
  for (const s of result.outcome.slashes) {
    slashed(cause, () => ({ [ATTR.sessionId]: ctx.sessionId, [ATTR.agentDid]: s.vouchee }));
    record(
      ctx,
      by,
      [
        { path: `/slashes/${s.slashId}`, operation: 'add', contentHash: contentHash(s) },
        {
          path: `/participants/${s.vouchee}/sigma`,
          operation: 'modify',
          contentHash: contentHash(0),
          previousHash: contentHash(s.sigmaBefore),
        },
        ...s.clips.map((c) => ({
          path: `/participants/${c.voucher}/sigma`,
          operation: 'modify' as const,
          contentHash: contentHash(c.after),
          previousHash: contentHash(c.before),
        })),
      ],
      undefined,
      signatures,
    );
  }
  ctx.bondsVersion++;
  for (const s of result.outcome.slashes) endElevation(ctx, s.vouchee, 'slash');
  applyRingChanges(ctx, result.ringChanges, `slash of ${agentDid}`, result.outcome.touched);
  // Tell the scorer; its cached score for the agent is stale now.
  invalidateTrust(ctx.st.trustCache, agentDid);
  await integrations
    .reportToTrustScorer({ agentDid, kind: 'slash', reason, ...(severity ? { severity } : {}) })
    .catch(logDropped('a slash reported to the trust scorer'));
  return result;
}

export const slashRules = (ctx: SessionContext, r: { agentDid: string; witnessDid: string }) => {
  requireOpen(ctx, 'slash');
  if (!participantOf(ctx.st.session, r.agentDid))
    throw new HypervisorError(
      'AGENT_NOT_FOUND',
      `agent ${r.agentDid} is not a participant of session ${ctx.sessionId}`,
    );
  requireSre(ctx, r.witnessDid, 'slash witness');
  if (r.witnessDid === r.agentDid)
    throw new HypervisorError('NOT_SRE_WITNESS', `an agent may not witness its own slash`);
};

/**
 * SPEC §11.9 (issue 24 N6): only the drift verifier's outcome may slash, and a report counts only when signed
 * by `reporterDid`, one of config.driftReporters — in every identity mode (the door checks the signature:
 * the registry marks reportDrift alwaysSigned). A session that names no reporter takes no drift report.
 */
export const requireReporter = (ctx: SessionContext, reporterDid: string) => {
  const reporters = ctx.st.session.config.driftReporters ?? [];
  if (!reporters.includes(reporterDid)) {
    throw new HypervisorError(
      'NOT_DRIFT_REPORTER',
      reporters.length === 0
        ? `session ${ctx.sessionId} names no drift reporter (config.driftReporters): it takes no drift report`
        : `${reporterDid} is not one of session ${ctx.sessionId}'s drift reporters (config.driftReporters); a drift report counts only when signed by one of them`,
      { did: reporterDid },
    );
  }
};
export const driftRules = (ctx: SessionContext, r: { agentDid: string; reporterDid?: string }, signed = true) => {
  requireOpen(ctx, 'report drift');
  if (signed) requireReporter(ctx, r.reporterDid ?? '');
  requireActiveParticipant(ctx, r.agentDid);
};

/** The participants' requests (SPEC §3, §4, §9), in the order the session sets their handlers */
export const participantHandlers = {
  join: {
    async run(ctx, req, a) {
      // SPEC §11.8 (issue 24 N10): the first declaration of an action is fixed; joins recorded before it replay as they ran.
      const firstFixed = patched('declarations-fixed');
      joinRules(ctx, req, a.name, firstFixed);
      // Its nonce is remembered once it has joined: until then `joining`, and after it the participant, refuse a replay.
      const signatures = a.signatures();
      ctx.joining.add(req.agentDid);
      try {
        // SPEC §3: the scorer's σ when σ_raw is absent; the lower of the two when both exist.
        // A regular activity, not a local one (local ones broke replay under concurrent updates in SDK 1.24).
        let scoredSigma = cachedTrust(ctx.st.trustCache, req.agentDid, Date.now())?.sigma;
        if (scoredSigma === undefined) {
          const score = await integrations.scoreTrust(req.agentDid);
          if (score !== null) {
            ctx.st.scorerConfigured = true;
            scoredSigma = cacheTrustScore(ctx.st.trustCache, req.agentDid, score, Date.now()).sigma;
          }
        }
        requireOpen(ctx, a.name);
        const result = join(ctx.st.session, ctx.st.liability, { ...req, scoredSigma }, Date.now(), { firstFixed });
        const p = participantOf(ctx.st.session, req.agentDid)!;
        acceptNonces(ctx.nonces, a.name, a.raw);
        // SPEC §12: a delegated child starts capped at its parent's ring + 1.
        const delegated =
          req.delegatedBy !== undefined
            ? capRing(
                ctx.st.session,
                req.agentDid,
                Math.min(3, participantOf(ctx.st.session, req.delegatedBy)!.ring + 1) as 0 | 1 | 2 | 3,
              )
            : [];
        if (req.delegatedBy !== undefined) ctx.parents.set(req.agentDid, req.delegatedBy);
        ringAssigned(p.ring, RING_CAUSE.join);
        record(
          ctx,
          req.agentDid,
          [
            { path: `/participants/${req.agentDid}`, operation: 'add', contentHash: contentHash(p) },
            ...(req.delegatedBy !== undefined
              ? [
                  {
                    path: `/participants/${req.agentDid}/delegatedBy`,
                    operation: 'add' as const,
                    contentHash: contentHash({ parent: req.delegatedBy, ringCap: p.ringCap }),
                  },
                ]
              : []),
            ...p.actions.map((a) => ({
              path: `/registry/${a}`,
              operation: 'add' as const,
              contentHash: contentHash(ownGet(ctx.st.session.registry.entries, a)),
            })),
          ],
          undefined,
          signatures,
        );
        refreshSearchAttributes(ctx);
        return delegated.length ? { ...result, ring: p.ring, sigmaEff: p.sigmaEff } : result;
      } finally {
        ctx.joining.delete(req.agentDid);
      }
    },
    check: (ctx, req: JoinRequestParsed, name) => joinRules(ctx, req, name),
  },
  activate: {
    run(ctx, _req, a) {
      const signatures = a.accept();
      activate(ctx.st.session, Date.now());
      record(
        ctx,
        HYPERVISOR_DID,
        [
          {
            path: '/state',
            operation: 'modify',
            contentHash: contentHash('active'),
            previousHash: contentHash('handshaking'),
          },
        ],
        undefined,
        signatures,
      );
      refreshSearchAttributes(ctx);
      return summary(ctx);
    },
    check: activateRules,
  },
  leave: {
    run(ctx, { agentDid }, a) {
      leaveRules(ctx, { agentDid });
      const signatures = a.accept();
      const p = leave(ctx.st.session, agentDid, Date.now());
      record(
        ctx,
        agentDid,
        [
          {
            path: `/participants/${agentDid}/active`,
            operation: 'modify',
            contentHash: contentHash(false),
            previousHash: contentHash(true),
          },
        ],
        undefined,
        signatures,
      );
      refreshSearchAttributes(ctx);
      restrictSagas(ctx, [agentDid]);
      return p;
    },
    check: leaveRules,
  },
  vouch: {
    run(ctx, req, a) {
      vouchRules(ctx, req);
      const signatures = a.accept();
      const { bond, ringChanges } = vouchInSession(ctx.st.session, ctx.st.liability, req, Date.now(), uuid4());
      record(
        ctx,
        req.voucher,
        [{ path: `/bonds/${bond.bondId}`, operation: 'add', contentHash: contentHash(bond) }],
        undefined,
        signatures,
      );
      ctx.bondsVersion++;
      applyRingChanges(ctx, ringChanges, `vouch ${bond.bondId}`);
      return bond;
    },
    check: vouchRules,
  },
  releaseBond: {
    run(ctx, req, a) {
      releaseRules(ctx, req);
      const existing = bondOf(ctx, req);
      const signatures = a.accept();
      const before = contentHash(existing);
      const bond = release(ctx.st.liability, req.bondId, Date.now(), req.reason);
      record(
        ctx,
        bond.voucher,
        [{ path: `/bonds/${bond.bondId}`, operation: 'delete', previousHash: before }],
        undefined,
        signatures,
      );
      ctx.bondsVersion++;
      applyRingChanges(
        ctx,
        refreshRings(ctx.st.session, ctx.st.liability, Date.now(), [bond.vouchee]),
        `release ${bond.bondId}`,
        [bond.vouchee],
      );
      return bond;
    },
    check: releaseRules,
  },
  checkAction: {
    run(ctx, req, a) {
      checkActionRules(ctx, req);
      const signatures = a.accept();
      const decision = gateStep({
        agent: agentView(ctx, req.agentDid),
        action: actionView(ctx, req.actionId),
        sessionState: ctx.st.session.state,
        hasConsensus: false,
        hasSreWitness: false,
        ringsOnly: true,
        now: Date.now(),
      });
      ctx.st.decisions++;
      record(
        ctx,
        req.agentDid,
        [
          {
            path: `/decisions/${ctx.st.decisions}`,
            operation: 'add',
            contentHash: contentHash({ ...req, ...recordedDecision(decision) }),
          },
        ],
        undefined,
        signatures,
      );
      noteRequests(ctx, req.agentDid, [req.actionId]);
      gateDecided('check_action', decision, decision.rule, () => ({
        [ATTR.sessionId]: ctx.sessionId,
        [ATTR.agentDid]: req.agentDid,
        [ATTR.actionId]: req.actionId,
      }));
      return decision;
    },
    check: checkActionRules,
  },
  slash: {
    async run(ctx, req, a) {
      slashRules(ctx, req);
      const signatures = a.accept();
      return slashAgent(
        ctx,
        req.agentDid,
        `${req.reason} (witnessed by ${req.witnessDid})`,
        req.omega ?? 0.95,
        req.witnessDid,
        SLASH_CAUSE.witnessed,
        undefined,
        signatures,
      );
    },
    check: slashRules,
  },
  reportDrift: {
    // A report accepted before reporters were required replays as it ran (unsigned, by the hypervisor): by its old schema.
    parsesItself: true,
    async run(ctx, _raw, a) {
      const signed = patched('drift-reports-signed');
      const req: { agentDid: string; reporterDid?: string; claimedEmbedding?: number[]; observedEmbedding?: number[] } =
        signed ? request(DriftReportSchema, a.raw, a.name) : parse(DriftMeasureSchema, a.raw, a.name);
      driftRules(ctx, req, signed);
      const signatures = signed ? a.accept() : [];
      const { agentDid, claimedEmbedding, observedEmbedding } = req;
      const drift = await integrations.measureDrift({
        agentDid,
        claimedEmbedding,
        observedEmbedding,
        sessionId: ctx.sessionId,
      });
      requireOpen(ctx, 'record drift');
      const decision = recordDriftCheck(ctx.st.drift, {
        agentDid: req.agentDid,
        sessionId: ctx.sessionId,
        drift,
        now: Date.now(),
      });
      record(
        ctx,
        signed ? req.reporterDid! : HYPERVISOR_DID,
        [
          {
            path: `/drift/${req.agentDid}/${ownGet(ctx.st.drift.byDid, req.agentDid)?.checks ?? 0}`,
            operation: 'add',
            contentHash: contentHash(decision),
          },
        ],
        undefined,
        signatures,
      );
      if (decision.action === 'slash') {
        const slash = await slashAgent(
          ctx,
          req.agentDid,
          `behavioural drift ${decision.drift.toFixed(3)} (${decision.severity})`,
          decision.slashOmega ?? 0.95,
          HYPERVISOR_DID,
          SLASH_CAUSE.drift,
          decision.reportSeverity ?? undefined,
        );
        return { decision, slash, ringChanges: slash.ringChanges };
      }
      if (decision.action === 'demote') {
        // SPEC §9 [resolved]: one ring down, held for the rest of the session.
        const changes = capRing(ctx.st.session, req.agentDid);
        applyRingChanges(ctx, changes, `drift ${decision.drift.toFixed(3)}`, [req.agentDid]);
        return { decision, slash: null, ringChanges: changes };
      }
      return { decision, slash: null, ringChanges: [] };
    },
    check: (ctx, r: { agentDid: string; reporterDid: string }) => driftRules(ctx, r),
  },
} satisfies Handlers;
