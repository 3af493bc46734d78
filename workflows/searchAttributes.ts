import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Search attributes the hypervisor indexes, so the Web UI and any client can filter by them. */
export const HvSessionId = defineSearchAttributeKey('HvSessionId', SearchAttributeType.KEYWORD);
export const HvAgentDids = defineSearchAttributeKey('HvAgentDids', SearchAttributeType.KEYWORD_LIST);
export const HvSessionState = defineSearchAttributeKey('HvSessionState', SearchAttributeType.KEYWORD);
export const HvSagaState = defineSearchAttributeKey('HvSagaState', SearchAttributeType.KEYWORD);
/** A session's quarantined and killed agents (SPEC §12): `HvQuarantined = 'did:…'` finds them. */
export const HvQuarantined = defineSearchAttributeKey('HvQuarantined', SearchAttributeType.KEYWORD_LIST);

export const SEARCH_ATTRIBUTES = [HvSessionId, HvAgentDids, HvSessionState, HvSagaState, HvQuarantined];

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
