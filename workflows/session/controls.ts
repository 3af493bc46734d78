/**
 * Controls (SPEC §12): quarantine, release, kill with hand-off, elevations, the breach detector, and the
 * durable timers that end what was set with a TTL.
 */
import * as wf from '@temporalio/workflow';
import { HypervisorError } from '../../src/core/errors';
import { gateStep } from '../../src/core/gate';
import { RESTRICTION, stepKey, type Elevation, type Restriction } from '../../src/core/controls';
import { participantOf } from '../../src/core/session';
import { capRing } from '../../src/core/sessionRings';
import { type DeltaSignature } from '../../src/core/identity';
import type { ControlResult } from '../../src/contract/sessionTypes';
import {
  HYPERVISOR_DID,
  integrations,
  contentHash,
  handoffDigest,
  elevationDigest,
  type SessionContext,
  isOpen,
  requireOpen,
  record,
  requireActiveParticipant,
  requireSre,
  requireUnrestricted,
  childrenOf,
  actsBehind,
} from './context';
import {
  agentView,
  actionView,
  runningSagas,
  restrictSagas,
  applyRingChanges,
  refreshSearchAttributes,
  approverRefusal,
  countsAsApprover,
  elevationView,
  endElevation,
} from './views';
import type { Handlers } from './door';
import { detach, patched } from '../ownRun';

/** N18: sessions recorded before controls had no breaker; a trip asks this patch (only then): they replay as they ran. */
export const BREAKER_PATCH = 'breaker-trips';

/** SPEC §12's breach detector: each request an agent makes, and whether it aims above its ring; a trip quarantines it. */
export function noteRequests(ctx: SessionContext, did: string, actionIds: readonly string[]): void {
  if (!participantOf(ctx.st.session, did)?.active) return;
  for (const actionId of actionIds) {
    const now = Date.now();
    const d = gateStep({
      agent: agentView(ctx, did),
      action: actionView(ctx, actionId),
      sessionState: 'active',
      hasConsensus: true,
      hasSreWitness: true,
      ringsOnly: true,
      now,
    });
    const above = !d.allowed && (d.rule === 'ring_capped' || d.rule === 'sigma_too_low' || d.rule === 'ring_too_low');
    const { severity, share, trip } = ctx.controls.noteRequest(did, above, now, () => actsBehind(ctx, BREAKER_PATCH));
    if (!trip) continue;
    impose(
      ctx,
      did,
      {
        kind: 'breaker',
        since: now,
        until: now + trip.cooldownMs,
        reason: `breach ${severity}: ${Math.round(share * 100)}% of its requests aimed above its ring`,
        by: HYPERVISOR_DID,
        substitute: null,
      },
      HYPERVISOR_DID,
    );
  }
}

/** Records a restriction and takes it to the running sagas at once. */
export function impose(
  ctx: SessionContext,
  did: string,
  r: Restriction,
  by: string,
  signatures?: DeltaSignature[],
): void {
  ctx.controls.restrict(did, r);
  if (r.until !== null) armExpiry(ctx, r.until);
  record(ctx, by, [{ path: `/controls/${did}`, operation: 'add', contentHash: contentHash(r) }], undefined, signatures);
  endElevation(ctx, did, r.kind);
  refreshSearchAttributes(ctx);
  restrictSagas(ctx, [did]);
}
export const controlResult = (
  agentDid: string,
  kind: ControlResult['kind'],
  until: number | null,
  sagasHolding: string[] = [],
  handedOff: ControlResult['handedOff'] = [],
): ControlResult => ({ agentDid, kind, until, sagasHolding, handedOff });
export const sreRules = (ctx: SessionContext, r: { agentDid: string; sreDid: string }, doing: string) => {
  requireOpen(ctx, doing);
  if (!participantOf(ctx.st.session, r.agentDid))
    throw new HypervisorError(
      'AGENT_NOT_FOUND',
      `cannot ${doing}: ${r.agentDid} is not a participant of session ${ctx.sessionId}`,
      { did: r.agentDid },
    );
  requireSre(ctx, r.sreDid, 'SRE');
  if (r.sreDid === r.agentDid) throw new HypervisorError('NOT_SRE_WITNESS', `an SRE may not ${doing} itself`);
};
export const notKilled = (ctx: SessionContext, did: string, doing: string) => {
  if (ctx.controls.level(did, Date.now()) === 2)
    throw new HypervisorError(
      'AGENT_KILLED',
      `cannot ${doing}: ${did} was killed in session ${ctx.sessionId}; a kill is final`,
      { did },
    );
};

export const quarantineRules = (ctx: SessionContext, r: { agentDid: string; sreDid: string }) => {
  sreRules(ctx, r, 'quarantine');
  notKilled(ctx, r.agentDid, 'quarantine');
};

export const releaseAgentRules = (ctx: SessionContext, r: { agentDid: string; sreDid: string }) => {
  sreRules(ctx, r, 'release');
  notKilled(ctx, r.agentDid, 'release');
  if (!ctx.controls.restrictionOf(r.agentDid, Date.now()))
    throw new HypervisorError('NOT_QUARANTINED', `${r.agentDid} is not quarantined in session ${ctx.sessionId}`, {
      did: r.agentDid,
    });
};

export const killRules = (
  ctx: SessionContext,
  r: { agentDid: string; sreDid: string; substituteDid?: string },
  doing: string,
) => {
  sreRules(ctx, r, doing);
  notKilled(ctx, r.agentDid, doing);
  if (r.substituteDid !== undefined) {
    if (r.substituteDid === r.agentDid)
      throw new HypervisorError(
        'INVALID_INPUT',
        'invalid kill: substituteDid: the killed agent cannot substitute for itself',
      );
    requireActiveParticipant(ctx, r.substituteDid, 'substitute');
    requireUnrestricted(ctx, r.substituteDid, 'substitute');
  }
};
export const elevationRules = (ctx: SessionContext, r: { agentDid: string; ring: 1 | 2 }) => {
  requireOpen(ctx, 'request an elevation');
  const p = requireActiveParticipant(ctx, r.agentDid);
  if (p.slashed)
    throw new HypervisorError(
      'AGENT_SLASHED',
      `agent ${r.agentDid} was slashed in session ${ctx.sessionId}; it may not be elevated`,
      { did: r.agentDid },
    );
  requireUnrestricted(ctx, r.agentDid, 'agent');
  if ((p.ringCap ?? 0) > r.ring)
    throw new HypervisorError(
      'RING_VIOLATION',
      `agent ${r.agentDid} is capped at ring ${p.ringCap}: no elevation lifts a cap`,
      { did: r.agentDid },
    );
  const held = ctx.controls.elevations.get(r.agentDid);
  if (held)
    throw new HypervisorError(
      'ELEVATION_EXISTS',
      `agent ${r.agentDid} already has elevation ${held.elevationId} (${held.activeFrom === null ? 'requested' : 'active'}); one per agent`,
      { elevationId: held.elevationId },
    );
};

export const elevationOf = (
  ctx: SessionContext,
  r: { agentDid: string; elevationId: string; digest?: string },
  doing: string,
) => {
  const e = ctx.controls.elevations.get(r.agentDid);
  if (!e || e.elevationId !== r.elevationId)
    throw new HypervisorError(
      'ELEVATION_NOT_FOUND',
      `cannot ${doing}: ${r.agentDid} has no elevation ${r.elevationId} in session ${ctx.sessionId}`,
    );
  if (r.digest !== undefined && r.digest !== e.digest)
    throw new HypervisorError(
      'DIGEST_MISMATCH',
      `cannot ${doing}: digest is not elevation ${e.elevationId}'s (${e.digest})`,
    );
  return e;
};
export const approveElevationRules = (
  ctx: SessionContext,
  r: { agentDid: string; elevationId: string; digest: string; approverDid: string },
) => {
  requireOpen(ctx, 'approve an elevation');
  const e = elevationOf(ctx, r, 'approve an elevation');
  if (e.activeFrom !== null)
    throw new HypervisorError('DUPLICATE_APPROVAL', `elevation ${e.elevationId} is already active`);
  // SPEC §11.9: the same rule as a step's approvers (no sybils: ring ≤ 2, joined before the request, not the requester).
  const refusal = approverRefusal(ctx, r.approverDid, r.agentDid, e.requestedAt);
  if (refusal) throw refusal;
  if (e.approvers.includes(r.approverDid))
    throw new HypervisorError('DUPLICATE_APPROVAL', `${r.approverDid} already approved elevation ${e.elevationId}`);
};

export const revokeRules = (ctx: SessionContext, r: { agentDid: string; byDid: string }) => {
  requireOpen(ctx, 'revoke an elevation');
  if (!ctx.controls.elevations.has(r.agentDid))
    throw new HypervisorError('ELEVATION_NOT_FOUND', `${r.agentDid} has no elevation in session ${ctx.sessionId}`);
  if (r.byDid !== r.agentDid) requireSre(ctx, r.byDid, 'revoker');
};

/**
 * A durable timer for a control's end (SPEC §12), started in the handler that set it: its command is
 * then issued before the update completes, whatever interceptors wrap the handler (a loop re-arming a
 * timer when woken would order its command by microtasks, which tracing changes). A timer of a control
 * released or revoked meanwhile finds nothing to end.
 */
export function armExpiry(ctx: SessionContext, until: number): void {
  detach(
    wf.sleep(Math.max(1, until - Date.now())).then(
      () => {
        if (isOpen(ctx)) expireControls(ctx, Date.now());
      },
      () => undefined,
    ),
  );
}

/** What ended by now: quarantines released, elevations ended (SPEC §12). */
export function expireControls(ctx: SessionContext, now: number): void {
  const { released, expired } = ctx.controls.expire(now);
  for (const [did, r] of released)
    record(
      ctx,
      HYPERVISOR_DID,
      [
        {
          path: `/controls/${did}`,
          operation: 'delete',
          contentHash: contentHash({ released: 'ttl', kind: r.kind }),
          previousHash: contentHash(r),
        },
      ],
      now,
    );
  for (const e of expired)
    record(
      ctx,
      HYPERVISOR_DID,
      [
        {
          path: `/elevations/${e.elevationId}`,
          operation: 'delete',
          contentHash: contentHash({ expired: true, until: e.until }),
          previousHash: contentHash(e),
        },
      ],
      now,
    );
  if (released.length > 0) refreshSearchAttributes(ctx);
  if (expired.length > 0)
    restrictSagas(
      ctx,
      expired.map((e) => e.agentDid),
    );
}

/** The controls' requests (SPEC §12), in the order the session sets their handlers */
export const controlHandlers = {
  quarantine: {
    run(ctx, req, a) {
      quarantineRules(ctx, req);
      const signatures = a.accept();
      const now = Date.now();
      const until = now + (req.ttlSeconds ?? ctx.controls.config.quarantineTtlSeconds) * 1000;
      impose(
        ctx,
        req.agentDid,
        { kind: 'quarantine', since: now, until, reason: req.reason, by: req.sreDid, substitute: null },
        req.sreDid,
        signatures,
      );
      return controlResult(
        req.agentDid,
        'quarantine',
        until,
        runningSagas(ctx)
          .filter((g) => g.agentDids.includes(req.agentDid))
          .map((g) => g.sagaId),
      );
    },
    check: quarantineRules,
  },
  release: {
    run(ctx, req, a) {
      releaseAgentRules(ctx, req);
      const signatures = a.accept();
      const lifted = ctx.controls.release(req.agentDid)!;
      record(
        ctx,
        req.sreDid,
        [
          {
            path: `/controls/${req.agentDid}`,
            operation: 'delete',
            contentHash: contentHash({ released: req.reason ?? 'released', kind: lifted.kind }),
            previousHash: contentHash(lifted),
          },
        ],
        undefined,
        signatures,
      );
      refreshSearchAttributes(ctx);
      return controlResult(req.agentDid, 'released', null);
    },
    check: releaseAgentRules,
  },
  kill: {
    async run(ctx, req, a) {
      killRules(ctx, req, a.name);
      const signatures = a.accept();
      const did = req.agentDid;
      const restriction: Restriction = {
        kind: RESTRICTION.kill,
        since: Date.now(),
        until: null,
        reason: req.reason,
        by: req.sreDid,
        substitute: req.substituteDid ?? null,
      };
      ctx.controls.restrict(did, restriction);
      endElevation(ctx, did, RESTRICTION.kill);
      // Its remaining steps become the substitute's, bound to a new digest; the substitute claims each (gate, rate, budget).
      const handedOff: ControlResult['handedOff'] = [];
      const holding = runningSagas(ctx).filter((g) => g.agentDids.includes(did));
      for (const saga of holding) {
        for (const step of saga.steps) {
          if (step.agentDid !== did) continue;
          ctx.controls.settle(stepKey(saga.workflowId, step.stepId), false);
          step.leased = false;
          // A turn is its agent's own (SPEC §13): it is not handed over; its saga compensates.
          if (!req.substituteDid || saga.turn) continue;
          // Handed on again: the agent its saga was given it for stays known (a format-3 outcome leaves it out).
          const given = step.handedFrom ? (step.handedFrom.given ?? step.handedFrom.agentDid) : undefined;
          step.handedFrom = { agentDid: did, digest: step.digest, ...(given !== undefined ? { given } : {}) };
          step.agentDid = req.substituteDid;
          step.digest = handoffDigest(step.digest, req.substituteDid);
          step.approvers = [];
          step.witness = null;
          step.rejectedBy = null;
          handedOff.push({ sagaId: saga.sagaId, stepId: step.stepId, agentDid: step.agentDid, digest: step.digest });
          // N5: the substitute acts in the saga now: its later kills, quarantines and demotions reach it.
          if (!saga.agentDids.includes(step.agentDid) && patched('substitute-joins-saga'))
            saga.agentDids = [...saga.agentDids, step.agentDid].sort();
        }
      }
      // Its children lose what they held through it.
      const following = childrenOf(ctx, did).flatMap((child) => capRing(ctx.st.session, child, 3));
      refreshSearchAttributes(ctx);
      restrictSagas(ctx, [did]);
      applyRingChanges(ctx, following, `kill of ${did}`);
      // The kill is recorded once every running saga of the agent holds it (its step in flight cancelled):
      // no step of the agent starts after this delta (SPEC §12).
      const held =
        holding.length > 0 ? await integrations.awaitHold({ workflowIds: holding.map((g) => g.workflowId), did }) : [];
      const sagasHolding = holding.filter((g) => held.includes(g.workflowId)).map((g) => g.sagaId);
      if (isOpen(ctx)) {
        record(
          ctx,
          req.sreDid,
          [
            {
              path: `/controls/${did}`,
              operation: 'add',
              contentHash: contentHash({ ...restriction, handedOff, sagasHolding }),
            },
          ],
          undefined,
          signatures,
        );
      }
      return controlResult(did, RESTRICTION.kill, null, sagasHolding, handedOff);
    },
    check: killRules,
  },
  requestElevation: {
    run(ctx, req, a) {
      elevationRules(ctx, req);
      const signatures = a.accept();
      const elevationId = `elevation-${++ctx.controls.elevationCount}`;
      const ttlSeconds = req.ttlSeconds ?? ctx.controls.config.elevationTtlSeconds;
      const e: Elevation = {
        elevationId,
        agentDid: req.agentDid,
        ring: req.ring,
        ttlSeconds,
        justification: req.justification,
        digest: elevationDigest({
          sessionId: ctx.sessionId,
          elevationId,
          agentDid: req.agentDid,
          ring: req.ring,
          ttlSeconds,
          justification: req.justification,
        }),
        requestedAt: Date.now(),
        approvers: [],
        activeFrom: null,
        until: null,
      };
      ctx.controls.elevations.set(req.agentDid, e);
      record(
        ctx,
        req.agentDid,
        [{ path: `/elevations/${elevationId}`, operation: 'add', contentHash: contentHash(e) }],
        undefined,
        signatures,
      );
      return elevationView(ctx, e);
    },
    check: elevationRules,
  },
  approveElevation: {
    run(ctx, req, a) {
      approveElevationRules(ctx, req);
      const signatures = a.accept();
      const e = elevationOf(ctx, req, 'approve an elevation');
      e.approvers.push(req.approverDid);
      record(
        ctx,
        req.approverDid,
        [
          {
            path: `/elevations/${e.elevationId}/approvals/${req.approverDid}`,
            operation: 'add',
            contentHash: contentHash({ digest: e.digest }),
          },
        ],
        undefined,
        signatures,
      );
      if (
        e.approvers.filter((d) => countsAsApprover(ctx, d, e.agentDid, e.requestedAt)).length >=
        ctx.st.session.config.consensusQuorum
      ) {
        const now = Date.now();
        e.activeFrom = now;
        e.until = now + e.ttlSeconds * 1000;
        armExpiry(ctx, e.until);
        record(ctx, HYPERVISOR_DID, [
          {
            path: `/elevations/${e.elevationId}`,
            operation: 'modify',
            contentHash: contentHash({ ring: e.ring, activeFrom: e.activeFrom, until: e.until }),
          },
        ]);
      }
      return elevationView(ctx, e);
    },
    check: approveElevationRules,
  },
  revokeElevation: {
    run(ctx, req, a) {
      revokeRules(ctx, req);
      const signatures = a.accept();
      const e = ctx.controls.elevations.get(req.agentDid)!;
      ctx.controls.elevations.delete(req.agentDid);
      record(
        ctx,
        req.byDid,
        [
          {
            path: `/elevations/${e.elevationId}`,
            operation: 'delete',
            contentHash: contentHash({ revoked: req.reason ?? 'revoked' }),
            previousHash: contentHash(e),
          },
        ],
        undefined,
        signatures,
      );
      restrictSagas(ctx, [req.agentDid]);
      return { ...elevationView(ctx, e), state: 'revoked' as const };
    },
    check: revokeRules,
  },
} satisfies Handlers;
