import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Search attributes the hypervisor indexes, so the Web UI and any client can filter by them. */
export const HvSessionId = defineSearchAttributeKey('HvSessionId', SearchAttributeType.KEYWORD);
export const HvAgentDids = defineSearchAttributeKey('HvAgentDids', SearchAttributeType.KEYWORD_LIST);
export const HvSessionState = defineSearchAttributeKey('HvSessionState', SearchAttributeType.KEYWORD);
export const HvSagaState = defineSearchAttributeKey('HvSagaState', SearchAttributeType.KEYWORD);
/** A session's quarantined and killed agents (SPEC §12): `HvQuarantined = 'did:…'` finds them. */
export const HvQuarantined = defineSearchAttributeKey('HvQuarantined', SearchAttributeType.KEYWORD_LIST);

/**
 * Set by a saga only while a step waits at its gate for approvals or a
 * witness, and removed when the wait ends, so `hv approvals list` is one
 * visibility query (`HvWaitingSince IS NOT NULL`). One entry per waiting step
 * (see pendingApprovalEntry).
 */
export const HvPendingApprovals = defineSearchAttributeKey('HvPendingApprovals', SearchAttributeType.KEYWORD_LIST);
export const HvWaitingSince = defineSearchAttributeKey('HvWaitingSince', SearchAttributeType.DATETIME);

export const SEARCH_ATTRIBUTES = [HvSessionId, HvAgentDids, HvSessionState, HvSagaState, HvQuarantined, HvPendingApprovals, HvWaitingSince];

/** What a waiting step is indexed with; `waitFor` is the gate's (consensus or witness), `quorum` the session's. */
export interface PendingApproval {
  stepId: string;
  digest: string;
  waitFor: string;
  quorum: number;
  sinceMs: number;
  deadlineMs: number;
}

/**
 * `stepId|digest|waitFor|quorum|sinceMs|deadlineMs`. Step ids are at most 200
 * characters of [A-Za-z0-9._:-] and digests 64 hex, so an entry stays under
 * 320 bytes, far below the 2,048-byte limit, and '|' never occurs in a field.
 */
export function pendingApprovalEntry(p: PendingApproval): string {
  return [p.stepId, p.digest, p.waitFor, p.quorum, p.sinceMs, p.deadlineMs].join('|');
}

/** The entry read back; null for anything not of that shape (the reader is total). */
export function parsePendingApproval(entry: unknown): PendingApproval | null {
  if (typeof entry !== 'string') return null;
  const f = entry.split('|');
  if (f.length !== 6 || !f[0] || !/^[0-9a-f]{64}$/.test(f[1]!) || !/^[a-z]+$/.test(f[2]!)) return null;
  const [quorum, sinceMs, deadlineMs] = f.slice(3).map((x) => (/^\d{1,16}$/.test(x) ? Number(x) : NaN));
  if (!Number.isSafeInteger(quorum) || !Number.isSafeInteger(sinceMs) || !Number.isSafeInteger(deadlineMs)) return null;
  return { stepId: f[0], digest: f[1]!, waitFor: f[2]!, quorum: quorum!, sinceMs: sinceMs!, deadlineMs: deadlineMs! };
}

/**
 * The server refuses a search attribute value over 2,048 bytes (of its JSON)
 * by terminating the workflow (BadSearchAttributes). A did:key is 56
 * characters, so ~35 of them exceed it: HvAgentDids lists the DIDs, in order,
 * that fit in 1,900 bytes; the session's `summary` query has them all.
 */
export const AGENT_DIDS_MAX_BYTES = 1900;
export function indexedAgentDids(dids: readonly string[]): string[] {
  const out: string[] = [];
  let bytes = 2;
  for (const d of dids) {
    bytes += new TextEncoder().encode(JSON.stringify(d)).length + 1;
    if (bytes > AGENT_DIDS_MAX_BYTES) break;
    out.push(d);
  }
  return out;
}
