/**
 * The session's side of the audit store (SPEC §7 [resolved]): batches of
 * deltas appended in order, and what termination leaves. The store is
 * idempotent by (session, turn), so a retried activity never duplicates.
 * A refusal that no retry can change (a conflicting trail under the same
 * session id, a gap, a malformed batch) fails without retries, with its code.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { QueryNotRegisteredError } from '@temporalio/client';
import type { Delta } from '../src/core/audit';
import type { StoredHashes } from '../src/core/auditStored';
import { isHypervisorError } from '../src/core/errors';
import type { AppendResult, AuditStore, SessionRecord, TrailHead } from '../src/store/types';
import type { IdentityMode } from '../src/core/identity';
import { createMerkleAccumulator, merkleRoot, type MerkleAccumulator } from '../src/core/merkle';
import { parseRow, readRows } from '../src/store/trail';
import {
  TREE_HEAD_FORMAT,
  frontierOf,
  identityOfTurn1,
  signBatchHeads,
  type HypervisorKey,
  type SignedTreeHead,
} from '../src/store/treeHeads';
import { auditAppended } from './observe';
import {
  AuditBatchRefSchema,
  deltasOfAuditBatch,
  storedAnswer,
  type AuditBatch,
  type AuditBatchRef,
  type AuditBatchStored,
} from '../src/contract/auditBatch';
import { definitions } from '../src/contract/definitions';
import { parse } from '../src/core/common';

const FINAL = new Set(['AUDIT_CONFLICT', 'AUDIT_GAP', 'INVALID_INPUT']);

async function finalOrRetry<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (isHypervisorError(err) && FINAL.has(err.code))
      throw ApplicationFailure.nonRetryable(err.message, err.code, err.details);
    throw err;
  }
}

/** How long the activity waits for its session to answer the pendingAuditBatch query: past it, the attempt fails and is retried. */
export const AUDIT_BATCH_QUERY_DEADLINE_MS = 10_000;

/** Reads the wire form of a batch's deltas from the session (the default: its pendingAuditBatch query). */
export type PendingBatchReader = (ref: AuditBatchRef) => Promise<unknown>;

/**
 * The session's answer to the pendingAuditBatch query — asked of the activity's own workflow
 * execution, id and run (the server's word), never of the session the input names. A refusal from
 * the session is final (AUDIT_BATCH_UNREAD: the session then sends the batch inline); a deadline or an
 * unreachable server fails the attempt, which is retried.
 */
export const queryOwnSession: PendingBatchReader = async ({ fromTurn, through }) => {
  const ctx = Context.current();
  const execution = ctx.info.workflowExecution;
  if (execution === undefined) throw unread(fromTurn, through, 'the activity runs for no workflow');
  const { workflowId, runId } = execution;
  const session = ctx.client.workflow.getHandle(workflowId, runId);
  try {
    return await ctx.client.withDeadline(Date.now() + AUDIT_BATCH_QUERY_DEADLINE_MS, () =>
      session.query(definitions.pendingAuditBatch, { fromTurn, through }),
    );
  } catch (err) {
    // The handler refused, or the workflow has none (not a session): no retry reads anything else.
    if (err instanceof QueryNotRegisteredError)
      throw unread(fromTurn, through, `the session did not answer them: ${err.message}`);
    throw err;
  }
};

function unread(fromTurn: number, through: number, why: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(
    `audit batch by reference, turns ${fromTurn} to ${through}: ${why}; nothing is stored`,
    'AUDIT_BATCH_UNREAD',
    { fromTurn, through },
  );
}

/**
 * The deltas of a batch by reference: the session's wire form of them, with the reference's session,
 * chain, parent and head — so they are stored only if they chain from the parent to the head the
 * session wrote in its history. Anything else is AUDIT_BATCH_UNREAD, naming the turns.
 */
async function deltasOfRef(input: AuditBatchRef, read: PendingBatchReader): Promise<Delta[]> {
  const ref = await finalOrRetry(async () => parse(AuditBatchRefSchema, input, 'audit batch by reference'));
  const { through, ...batch } = ref;
  const { fromTurn } = batch;
  const answer = await read(ref);
  const deltas = (answer as Partial<AuditBatch> | null)?.deltas;
  if (!Array.isArray(deltas) || deltas.length !== through - fromTurn + 1)
    throw unread(fromTurn, through, `the session answered ${Array.isArray(deltas) ? deltas.length : 'no'} deltas`);
  try {
    return deltasOfAuditBatch({ ...batch, deltas });
  } catch (err) {
    throw unread(fromTurn, through, (err as Error).message.replace(/; nothing is stored$/, ''));
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

/** The trail's turn 1 as stored, for its identity mode (when no head of ours says it yet). */
async function storedIdentity(store: AuditStore, sessionId: string): Promise<IdentityMode> {
  const row = (await store.readRows(sessionId, 1, 1))[0];
  const parsed = row === undefined ? undefined : parseRow(row);
  return identityOfTurn1(parsed && 'delta' in parsed ? parsed.delta : undefined);
}

/**
 * N14: the hypervisor signs the tree head at every turn of a batch it has just stored — the
 * Merkle root and chain hash at that size, the identity mode — continuing from the frontier
 * kept with the previous batch's last head (or, without one, the stored hashes). Returns the last
 * head and the frontier through the batch.
 */
async function signStoredBatch(
  store: AuditStore,
  key: HypervisorKey,
  sessionId: string,
  deltas: readonly Delta[],
): Promise<{ head: SignedTreeHead; frontier: MerkleAccumulator } | undefined> {
  const first = deltas[0];
  if (first === undefined) return undefined;
  let base: MerkleAccumulator = createMerkleAccumulator();
  let identity: IdentityMode;
  if (first.turn === 1) {
    identity = identityOfTurn1(first);
  } else {
    const last = await store.lastTreeHead(sessionId);
    if (
      last !== null &&
      last.signed.treeHead.size === first.turn - 1 &&
      last.frontier !== null &&
      last.frontier.count === first.turn - 1
    ) {
      base = last.frontier;
      identity = last.signed.treeHead.identity;
    } else {
      base = frontierOf((await readRows(store, sessionId, first.turn - 1)).map((r) => r.hash));
      identity = await storedIdentity(store, sessionId);
    }
  }
  const { heads, frontier } = signBatchHeads(key, sessionId, base, deltas, identity, Date.now());
  await store.putTreeHeads(sessionId, heads, frontier);
  return { head: heads[heads.length - 1] as SignedTreeHead, frontier };
}

/** N14: at termination, the head that covers the commitment — only over what the hypervisor's own heads (or the store) give. */
async function signFinalHead(store: AuditStore, key: HypervisorKey, record: SessionRecord): Promise<SignedTreeHead> {
  const { sessionId, commitment } = record;
  const size = commitment.deltaCount;
  const last = await store.lastTreeHead(sessionId);
  let root: string | null;
  let head: string | null;
  let identity: IdentityMode;
  if (last !== null && last.signed.treeHead.size === size) {
    ({ root, head, identity } = last.signed.treeHead);
  } else {
    const rows = await readRows(store, sessionId, size);
    const acc = frontierOf(rows.map((r) => r.hash));
    root = merkleRoot(acc);
    head = rows[rows.length - 1]?.hash ?? null;
    identity = size === 0 ? 'none' : await storedIdentity(store, sessionId);
    if (rows.length !== size) root = null;
  }
  if (root !== commitment.merkleRoot) {
    throw ApplicationFailure.nonRetryable(
      `session ${sessionId}: the commitment's root ${String(commitment.merkleRoot)} over ${size} deltas is not the stored trail's ${String(root)}; the hypervisor signs no final head over it`,
      'AUDIT_CONFLICT',
    );
  }
  const signed = key.signTreeHead({
    format: TREE_HEAD_FORMAT,
    sessionId,
    size,
    root,
    head,
    identity,
    at: Date.now(),
    final: true,
  });
  await store.putTreeHeads(sessionId, [signed]);
  return signed;
}

/** `key`: the hypervisor's (src/store/treeHeads.ts loadHypervisorKey); without one no head is signed. */
export function auditActivities(
  store: AuditStore,
  key?: HypervisorKey,
  readPending: PendingBatchReader = queryOwnSession,
) {
  return {
    /**
     * A batch of the session's trail: its wire form (src/contract/auditBatch.ts), whose deltas are
     * rebuilt and rehashed here and refused unless their chain ends at the session's head; or the
     * deltas whole, as sessions sent them before (one scheduled by an older worker may run here).
     * `stored`: the hashes the store holds at the batch's turns — the batch's own, since any other
     * is AUDIT_CONFLICT (for the wire form, when shorter, the last one and the Merkle frontier through
     * it). Recorded in history, they let the session chain on what the store has even when a replay
     * recomputes a delta differently (src/core/auditStored.ts markStored). The wire form's answer is only
     * that: the rest of the old answer (the count, the signed tree head) no session reads.
     * By reference (what sessions send now: the wire form without its deltas), the deltas are read from
     * the session (deltasOfRef) and answered as the wire form's.
     */
    async appendAuditDeltas(
      args: AuditBatchRef | AuditBatch | { sessionId: string; deltas: Delta[]; chain?: string },
    ): Promise<AuditBatchStored | (AppendResult & { stored?: StoredHashes; treeHead?: SignedTreeHead })> {
      const wire = 'fromTurn' in args;
      const deltas =
        'through' in args
          ? await deltasOfRef(args, readPending)
          : wire
            ? await finalOrRetry(async () => deltasOfAuditBatch(args))
            : args.deltas;
      const result = await finalOrRetry(() => store.append(args.sessionId, deltas, ownerOf(args.chain)));
      auditAppended(result.appended);
      const first = deltas[0];
      if (first === undefined) return result;
      // Signed only once the batch is the owner's and stored: the store keeps the heads.
      const signed = key ? await signStoredBatch(store, key, args.sessionId, deltas) : undefined;
      const hashes = deltas.map((d) => d.hash);
      if (wire) return storedAnswer(first.turn, hashes, signed?.frontier);
      return { ...result, stored: { fromTurn: first.turn, hashes }, ...(signed ? { treeHead: signed.head } : {}) };
    },
    /** A file's contents, kept under its session (N13: other sessions cannot read them; they go with its VFS). */
    async storeFile(args: { content: string; sessionId?: string; chain?: string }): Promise<{ contentHash: string }> {
      // Histories from before files were kept per session name no session: the workflow id's session is theirs.
      const sessionId =
        args.sessionId ?? Context.current().info.workflowExecution?.workflowId.replace(/^hv-session-/, '') ?? '';
      return { contentHash: await finalOrRetry(() => store.putFile(sessionId, args.content, ownerOf(args.chain))) };
    },
    async storeSessionRecord(args: SessionRecord & { chain?: string }): Promise<void> {
      const { chain, ...record } = args;
      await finalOrRetry(() => store.putSession(record, ownerOf(chain)));
      if (key) await signFinalHead(store, key, record);
    },
    /**
     * A continued session proves its carried state against the store: the trail is its own, and
     * the carried chain head is the stored head. Anything else fails the run (AUDIT_CONFLICT).
     */
    async checkCarriedTrail(args: {
      sessionId: string;
      chain: string;
      turn: number;
      head: string | null;
    }): Promise<TrailHead> {
      const stored = await store.trailHead(args.sessionId);
      const owner = ownerOf(args.chain);
      if (stored.owner !== null && stored.owner !== owner) {
        throw ApplicationFailure.nonRetryable(
          `session ${args.sessionId}: the audit trail belongs to another session workflow; carried state from this run is not the session's`,
          'AUDIT_CONFLICT',
        );
      }
      if (stored.turn !== args.turn || stored.hash !== args.head) {
        throw ApplicationFailure.nonRetryable(
          `session ${args.sessionId}: carried state names turn ${args.turn} (${args.head ?? 'none'}) but the audit store holds turn ${stored.turn} (${stored.hash ?? 'none'})`,
          'AUDIT_CONFLICT',
        );
      }
      return stored;
    },
    async expireAuditTrails(args: { now?: number } = {}): Promise<{ sessions: number; deltasPurged: number }> {
      const result = await store.expire(args.now ?? Date.now());
      return { sessions: result.sessions.length, deltasPurged: result.deltasPurged };
    },
  };
}
