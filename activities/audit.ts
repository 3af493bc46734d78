/**
 * The session's side of the audit store (SPEC §7 [resolved]): batches of
 * deltas appended in order, and what termination leaves. The store is
 * idempotent by (session, turn), so a retried activity never duplicates.
 * A refusal that no retry can change (a conflicting trail under the same
 * session id, a gap, a malformed batch) fails without retries, with its code.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Delta, StoredHashes } from '../src/core/audit';
import { isHypervisorError } from '../src/core/errors';
import type { AppendResult, AuditStore, SessionRecord, TrailHead } from '../src/store/types';
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

/**
 * The session workflow writing a trail: the workflow id from the activity's own
 * info (the server's word, not the request's) and the first run of its chain,
 * which the session passes (`chain`: wf.workflowInfo().firstExecutionRunId).
 * A request can choose a workflow's input, never its id's first run, so a
 * forged session (a cron run, a retry, a start under a reused id) is not the owner.
 */
function ownerOf(chain: string | undefined): string | undefined {
  if (chain === undefined) return undefined;
  return JSON.stringify([Context.current().info.workflowExecution?.workflowId ?? null, chain]);
}

export function auditActivities(store: AuditStore) {
  return {
    /**
     * `stored`: the hashes the store holds at the batch's turns — the batch's own, since any other is
     * AUDIT_CONFLICT. Recorded in history, they let the session chain on what the store has even when
     * a replay recomputes a delta differently (src/core/audit.ts markStored).
     */
    async appendAuditDeltas(args: { sessionId: string; deltas: Delta[]; chain?: string }): Promise<AppendResult & { stored?: StoredHashes }> {
      const result = await finalOrRetry(() => store.append(args.sessionId, args.deltas, ownerOf(args.chain)));
      auditAppended(result.appended);
      const first = args.deltas[0];
      return first === undefined ? result : { ...result, stored: { fromTurn: first.turn, hashes: args.deltas.map((d) => d.hash) } };
    },
    async storeFile(args: { content: string }): Promise<{ contentHash: string }> {
      return { contentHash: await finalOrRetry(() => store.putFile(args.content)) };
    },
    storeSessionRecord(args: SessionRecord & { chain?: string }): Promise<void> {
      const { chain, ...record } = args;
      return finalOrRetry(() => store.putSession(record, ownerOf(chain)));
    },
    /**
     * A continued session proves its carried state against the store: the trail is its own, and
     * the carried chain head is the stored head. Anything else fails the run (AUDIT_CONFLICT).
     */
    async checkCarriedTrail(args: { sessionId: string; chain: string; turn: number; head: string | null }): Promise<TrailHead> {
      const stored = await store.trailHead(args.sessionId);
      const owner = ownerOf(args.chain);
      if (stored.owner !== null && stored.owner !== owner) {
        throw ApplicationFailure.nonRetryable(`session ${args.sessionId}: the audit trail belongs to another session workflow; carried state from this run is not the session's`, 'AUDIT_CONFLICT');
      }
      if (stored.turn !== args.turn || stored.hash !== args.head) {
        throw ApplicationFailure.nonRetryable(`session ${args.sessionId}: carried state names turn ${args.turn} (${args.head ?? 'none'}) but the audit store holds turn ${stored.turn} (${stored.hash ?? 'none'})`, 'AUDIT_CONFLICT');
      }
      return stored;
    },
    async expireAuditTrails(args: { now?: number } = {}): Promise<{ sessions: number; deltasPurged: number }> {
      const result = await store.expire(args.now ?? Date.now());
      return { sessions: result.sessions.length, deltasPurged: result.deltasPurged };
    },
  };
}
