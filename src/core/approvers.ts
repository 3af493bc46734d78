/**
 * SPEC §11.9 (issue 24 N11): who counts as an approver of a step or of an
 * elevation.
 */
import { HypervisorError } from './errors';
import { participantOf, type SessionState } from './session';

/** The least privileged ring whose participants may approve (SPEC §11.9): a sandboxed (ring 3) DID never counts. */
export const APPROVER_MAX_RING = 2;

/** What checkApprover needs to know of the request and the session beyond the participants. */
export interface ApprovalContext {
  /** The acting agent of the step, or the agent asking for the elevation: never its own approver. */
  requesterDid: string;
  /** When the step's saga or the elevation was requested: an approver joined before it. */
  requestedAt: number;
  /** The approver's restriction now (SPEC §12): 0 none, 1 quarantined, 2 killed. */
  restriction: 0 | 1 | 2;
}

/**
 * SPEC §11.9 (issue 24 N11), the one rule for who counts as an approver of a
 * step (approve, reject) or of an elevation: an active participant, not
 * slashed, of ring ≤ 2 (its own ring, not an elevation's), that joined before
 * the request, is not quarantined or killed, and is not the requester. Fresh
 * σ 0 DIDs joined for the purpose (sybils) are ring 3 and joined after the
 * request: they count for nothing. Returns why not, or null. Evaluated when an
 * approval is given and again whenever approvals are counted.
 */
export function checkApprover(s: SessionState, approverDid: string, c: ApprovalContext): HypervisorError | null {
  const p = participantOf(s, approverDid);
  if (!p?.active)
    return new HypervisorError(
      'AGENT_NOT_FOUND',
      `approver ${approverDid} is not an active participant of session ${s.sessionId}`,
      { did: approverDid },
    );
  if (p.slashed)
    return new HypervisorError('AGENT_SLASHED', `approver ${approverDid} was slashed; it may not approve or reject`, {
      did: approverDid,
    });
  if (c.restriction > 0) {
    return new HypervisorError(
      c.restriction === 2 ? 'AGENT_KILLED' : 'AGENT_QUARANTINED',
      `approver ${approverDid} is ${c.restriction === 2 ? 'killed' : 'quarantined'} in session ${s.sessionId}; it may not approve or reject`,
      { did: approverDid },
    );
  }
  if (approverDid === c.requesterDid)
    return new HypervisorError('SELF_APPROVAL', `approver ${approverDid} is the agent the request is for`, {
      did: approverDid,
    });
  if (p.ring > APPROVER_MAX_RING) {
    return new HypervisorError(
      'NOT_ELIGIBLE_APPROVER',
      `approver ${approverDid} is in ring ${p.ring} of session ${s.sessionId}; only participants of ring ${APPROVER_MAX_RING} or more privileged approve (SPEC §11.9)`,
      { did: approverDid, ring: p.ring },
    );
  }
  if (!(p.joinedAt < c.requestedAt)) {
    return new HypervisorError(
      'NOT_ELIGIBLE_APPROVER',
      `approver ${approverDid} joined session ${s.sessionId} at ${p.joinedAt}, not before the request it would approve (${c.requestedAt}) (SPEC §11.9)`,
      { did: approverDid, joinedAt: p.joinedAt, requestedAt: c.requestedAt },
    );
  }
  return null;
}
