/**
 * Valid deltas for the audit-store tests, built here (not with the session's
 * appendDelta) so the tests depend only on the Delta shape and deltaHash.
 * The same (session, n, variant) always gives the same chain, in any process.
 */
import { createHash } from 'node:crypto';
import { deltaHash, type Delta } from '../../src/core/audit';
import type { Commitment } from '../../src/core/commitment';
import type { AuditStore } from '../../src/store/types';

export const AGENT = 'did:mesh:alice';

/** Turns 1..n of a session; another variant gives a different chain (every hash differs). */
export function chain(sessionId: string, n: number, variant = 'a'): Delta[] {
  const out: Delta[] = [];
  let parent: string | null = null;
  for (let turn = 1; turn <= n; turn++) {
    const delta: Delta = {
      deltaId: `${variant}-${turn}`,
      turn,
      sessionId,
      agentDid: AGENT,
      at: 1_700_000_000_000 + turn,
      changes: [
        {
          path: turn % 3 === 0 ? `/données/日本/${variant}/${turn}.txt` : `/files/${variant}/${turn}.txt`,
          operation: turn === 1 ? 'add' : 'modify',
          contentHash: createHash('sha256').update(`${variant}:${turn}`).digest('hex'),
          agentDid: AGENT,
        },
      ],
      parentHash: parent,
      hash: '',
    };
    delta.hash = deltaHash(delta);
    out.push(delta);
    parent = delta.hash;
  }
  return out;
}

export function commitment(sessionId: string, deltaCount: number, merkleRoot: string | null = null): Commitment {
  return {
    sessionId,
    merkleRoot,
    participantDids: [AGENT, 'did:mesh:bob'],
    deltaCount,
    committedAt: 1_700_000_100_000,
    anchorTarget: 'local',
    anchorTxId: null,
  };
}

/** Append a chain in batches of `size`; the total appended by this caller. */
export async function appendInBatches(store: AuditStore, deltas: readonly Delta[], size: number): Promise<number> {
  let appended = 0;
  for (let i = 0; i < deltas.length; i += size) {
    appended += (await store.append(deltas[0]!.sessionId, deltas.slice(i, i + size))).appended;
  }
  return appended;
}
