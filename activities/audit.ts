/**
 * The session's side of the audit store (SPEC §7 [resolved]): batches of
 * deltas appended in order, and what termination leaves. The store is
 * idempotent by (session, turn), so a retried activity never duplicates.
 * A refusal that no retry can change (a conflicting trail under the same
 * session id, a gap, a malformed batch) fails without retries, with its code.
 */
import { ApplicationFailure } from '@temporalio/activity';
import type { Delta, StoredHashes } from '../src/audit';
import { isHypervisorError } from '../src/errors';
import type { AppendResult, AuditStore, SessionRecord } from '../src/store/types';
import { auditAppended } from './observe';

const FINAL = new Set(['AUDIT_CONFLICT', 'AUDIT_GAP', 'INVALID_INPUT']);

async function finalOrRetry<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (isHypervisorError(err) && FINAL.has(err.code)) throw ApplicationFailure.nonRetryable(err.message, err.code, err.details);
    throw err;
  }
}

export function auditActivities(store: AuditStore) {
  return {
    /**
     * `stored`: the hashes the store holds at the batch's turns — the batch's own, since any other is
     * AUDIT_CONFLICT. Recorded in history, they let the session chain on what the store has even when
     * a replay recomputes a delta differently (src/audit.ts markStored).
     */
    async appendAuditDeltas(args: { sessionId: string; deltas: Delta[] }): Promise<AppendResult & { stored?: StoredHashes }> {
      const result = await finalOrRetry(() => store.append(args.sessionId, args.deltas));
      auditAppended(result.appended);
      const first = args.deltas[0];
      return first === undefined ? result : { ...result, stored: { fromTurn: first.turn, hashes: args.deltas.map((d) => d.hash) } };
    },
    async storeFile(args: { content: string }): Promise<{ contentHash: string }> {
      return { contentHash: await finalOrRetry(() => store.putFile(args.content)) };
    },
    storeSessionRecord(record: SessionRecord): Promise<void> {
      return finalOrRetry(() => store.putSession(record));
    },
    async expireAuditTrails(args: { now?: number } = {}): Promise<{ sessions: number; deltasPurged: number }> {
      const result = await store.expire(args.now ?? Date.now());
      return { sessions: result.sessions.length, deltasPurged: result.deltasPurged };
    },
  };
}
