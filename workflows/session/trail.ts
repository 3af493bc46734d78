/**
 * The trail: deltas recorded by the session go to the audit store in bounded batches (SPEC §7 [resolved]);
 * a new session's first turn, or a continued run's carried head, is settled with the store before anything is granted.
 */
import * as wf from '@temporalio/workflow';
import { HypervisorError } from '../../src/core/errors';
import type { Delta } from '../../src/core/audit';
import { markStored } from '../../src/core/auditStored';
import { IDENTITY_CHANGE } from '../../src/core/identity';
import { HYPERVISOR_DID, auditStore, auditStoreQuick, contentHash, type SessionContext, record } from './context';
import { detach, patched } from '../ownRun';
import {
  AUDIT_BATCH_MAX_DELTAS,
  AuditTurnsSchema,
  refOfDeltas,
  toAuditBatch,
  type AuditBatch,
} from '../../src/contract/auditBatch';
import { parse } from '../../src/core/common';

/**
 * Batching of the trail into the store (SPEC §7 [resolved]): a batch goes when
 * it is full, when termination or continue-as-new needs everything stored, or
 * when its first delta has waited AUDIT_FLUSH_INTERVAL. Batches are bounded in
 * deltas and bytes (Temporal refuses payloads over 2 MiB).
 */
const AUDIT_BATCH_DELTAS = AUDIT_BATCH_MAX_DELTAS;
const AUDIT_BATCH_BYTES = 512 * 1024;
const AUDIT_FLUSH_INTERVAL = '5 seconds';
/** Deltas waiting for the store beyond which new requests are refused (AUDIT_BACKLOG): the store is not keeping up. */
export const AUDIT_BACKLOG_MAX = 4096;

function nextBatch(pending: readonly Delta[]): Delta[] {
  const batch: Delta[] = [];
  let bytes = 0;
  for (const d of pending) {
    bytes += JSON.stringify(d).length;
    if (batch.length > 0 && (batch.length >= AUDIT_BATCH_DELTAS || bytes > AUDIT_BATCH_BYTES)) break;
    batch.push(d);
  }
  return batch;
}

/**
 * The trail's start. A new session's creation is turn 1, recorded before any handler exists (an update
 * that arrived with the start runs as soon as its handler is set), and goes to the store before any
 * request is granted: a session id whose trail the store already holds (an earlier session's) fails the
 * session here. Requests accepted meanwhile wait in the door, and their handlers check their rules again.
 * A continued run proves its carried state first: the store's trail is this chain's, and its head is the
 * carried one (SPEC §11: carried state is a claim like any input). Returns whether it is proving.
 */
export function startTrail(ctx: SessionContext): boolean {
  const { st, input } = ctx;
  ctx.outageServe = patched('audit-outage-serve');
  if (!input.carried) {
    record(ctx, HYPERVISOR_DID, [
      {
        path: '/',
        operation: 'add',
        contentHash: contentHash({ sessionId: ctx.sessionId, config: st.session.config, creatorDid: input.creatorDid }),
      },
      // Says to an offline verifier that every agent's delta of this trail carries its signature.
      ...(ctx.identity === 'did:key' ? [IDENTITY_CHANGE] : []),
    ]);
  }
  const proving = input.carried !== undefined && st.session.config.auditEnabled && patched('carried-state-proven');
  if (proving) {
    detach(proveCarried(ctx).then(() => flushLoop(ctx)));
  } else {
    detach(flushLoop(ctx));
    ctx.trailStarted = input.carried !== undefined || !st.session.config.auditEnabled;
    if (!ctx.trailStarted) {
      detach(
        flushAll(ctx).then(() => {
          ctx.trailStarted = true;
        }),
      );
    }
  }
  return proving;
}

async function proveCarried(ctx: SessionContext): Promise<void> {
  const { audit } = ctx.st;
  try {
    if (audit.stored !== audit.turn)
      throw new Error(`it carries ${audit.turn - audit.stored} deltas the store does not hold`);
    await auditStore.checkCarriedTrail({
      sessionId: ctx.sessionId,
      chain: ctx.chain,
      turn: audit.turn,
      head: audit.head,
    });
    ctx.trailStarted = true;
  } catch (err) {
    const cause = err instanceof wf.ActivityFailure ? err.cause : err;
    ctx.fatal = wf.ApplicationFailure.nonRetryable(
      `session ${ctx.sessionId}: carried state is not proven by the audit store: ${(cause as Error)?.message ?? String(cause)}`,
      'AUDIT_CONFLICT',
    );
  }
}

/**
 * The pendingAuditBatch query: the wire form of the pending deltas of turns fromTurn..through, which
 * the appendAuditDeltas activity reads for a batch sent by reference. It reads state, never changes it.
 */
export function pendingAuditBatch(ctx: SessionContext, raw: unknown): AuditBatch {
  const { fromTurn, through } = parse(AuditTurnsSchema, raw, 'pendingAuditBatch');
  const pending = ctx.st.audit.deltas;
  const start = pending.findIndex((d) => d.turn === fromTurn);
  const deltas = start < 0 ? [] : pending.slice(start, start + (through - fromTurn + 1));
  const batch = deltas.at(-1)?.turn === through ? toAuditBatch(ctx.sessionId, ctx.chain, deltas) : undefined;
  if (batch === undefined) {
    const first = pending[0]?.turn;
    throw new HypervisorError(
      'AUDIT_BATCH_UNREAD',
      `session ${ctx.sessionId}: turns ${fromTurn} to ${through} are not its pending deltas (${first === undefined ? 'none is pending' : `turns ${first} to ${ctx.st.audit.turn} are`})`,
      { fromTurn, through },
    );
  }
  return batch;
}

/**
 * The store could not read a batch by reference as the session named it (AUDIT_BATCH_UNREAD), or a
 * worker from before the reference form refused it as no batch (INVALID_INPUT, in a rolling upgrade).
 */
function unreadBatch(err: unknown): boolean {
  const cause = err instanceof wf.ActivityFailure ? err.cause : undefined;
  return (
    cause instanceof wf.ApplicationFailure && (cause.type === 'AUDIT_BATCH_UNREAD' || cause.type === 'INVALID_INPUT')
  );
}

export async function flushBatch(ctx: SessionContext): Promise<void> {
  const batch = nextBatch(ctx.st.audit.deltas);
  if (batch.length === 0) return;
  ctx.flushing = true;
  try {
    const store = ctx.outageServe ? auditStoreQuick : auditStore;
    // By reference: the deltas follow from this history already, so the activity reads their wire form
    // from the session (pendingAuditBatch) and checks it ends at the head written here. Deltas that are
    // not one chain (never expected) go whole, for the store to judge. Activity inputs do not replay.
    const ref = refOfDeltas(ctx.sessionId, ctx.chain, batch);
    const appended = ref
      ? await store.appendAuditDeltas(ref).catch((err: unknown) => {
          // The session's deltas as read do not end at that head (a replay recomputed one) or are not
          // pending: that batch goes inline (the rare path, so it alone meets the patch).
          if (unreadBatch(err) && patched('audit-batch-inline'))
            return store.appendAuditDeltas(toAuditBatch(ctx.sessionId, ctx.chain, batch)!);
          throw err;
        })
      : await store.appendAuditDeltas({ sessionId: ctx.sessionId, deltas: batch, chain: ctx.chain });
    // The store's hashes (from history, the same live and on replay) are the chain from here on.
    markStored(ctx.st.audit, (batch[batch.length - 1] as Delta).turn, appended.stored);
  } catch (err) {
    const cause = err instanceof wf.ActivityFailure ? err.cause : err;
    const code = cause instanceof wf.ApplicationFailure ? cause.type : undefined;
    // The first batch of a new session meets another session's trail under its id: nothing can be recorded for it.
    if (code === 'AUDIT_CONFLICT' && ctx.st.audit.stored === 0 && batch[0]?.turn === 1) {
      ctx.fatal = wf.ApplicationFailure.nonRetryable(
        `session ${ctx.sessionId}: the audit store already holds another trail under this session id; start the session under a new id`,
        'AUDIT_CONFLICT',
      );
      return;
    }
    wf.log.error('audit store refused a batch; retrying', {
      sessionId: ctx.sessionId,
      fromTurn: batch[0]?.turn,
      error: String((cause as Error)?.message ?? cause),
    });
    await wf.sleep(ctx.outageServe ? '10 seconds' : '1 minute');
  } finally {
    ctx.flushing = false;
  }
}

export async function flushLoop(ctx: SessionContext): Promise<void> {
  while (ctx.fatal === undefined) {
    await wf.condition(() => ctx.st.audit.deltas.length > 0);
    if (ctx.flushWanted === 0 && ctx.st.audit.deltas.length < AUDIT_BATCH_DELTAS) {
      await wf.condition(
        () => ctx.flushWanted > 0 || ctx.st.audit.deltas.length >= AUDIT_BATCH_DELTAS,
        AUDIT_FLUSH_INTERVAL,
      );
    }
    await flushBatch(ctx);
  }
}

/** Wait until the store holds every delta recorded so far. */
export async function flushAll(ctx: SessionContext): Promise<void> {
  ctx.flushWanted++;
  try {
    await wf.condition(() => ctx.fatal !== undefined || (ctx.st.audit.deltas.length === 0 && !ctx.flushing));
  } finally {
    ctx.flushWanted--;
  }
}

/**
 * N27: how far a run serves past its continue-as-new point while the audit store is down — in
 * updates (a multiple of maxUpdatesPerRun) and in history (well below Temporal's 51,200 events and
 * 50 MB per run). Past either, requests are refused with AUDIT_BACKLOG until the store answers.
 */
export const OVERDRAFT_UPDATES_FACTOR = 2;
export const OVERDRAFT_HISTORY_EVENTS = 30_000;
export const OVERDRAFT_HISTORY_BYTES = 30 * 1024 * 1024;

/**
 * N27: the end of a run while the store may be down. The run keeps serving (within the overdraft
 * bounds) until the store holds every delta recorded when the run reached its continue-as-new
 * point; only then does it wind down — briefly, to store what came meanwhile — and continue as new.
 * The next run carries no unstored delta, so it proves its carried head against the store as before.
 */
export async function storeBeforeWindingDown(ctx: SessionContext): Promise<void> {
  if (!ctx.outageServe || ctx.terminated !== undefined || ctx.fatal !== undefined) return;
  const through = ctx.st.audit.turn;
  if (ctx.st.audit.stored >= through) return;
  ctx.overdraft = true;
  ctx.flushWanted++;
  try {
    await wf.condition(() => ctx.fatal !== undefined || ctx.terminated !== undefined || ctx.st.audit.stored >= through);
  } finally {
    ctx.flushWanted--;
    ctx.overdraft = false;
  }
}

/** SPEC §11.6: every list is bounded — while the store lags this far behind, requests that add deltas wait outside. */
export function requireAuditCapacity(ctx: SessionContext, what: string): void {
  if (ctx.st.audit.deltas.length >= AUDIT_BACKLOG_MAX) {
    throw new HypervisorError(
      'AUDIT_BACKLOG',
      `cannot ${what}: ${ctx.st.audit.deltas.length} deltas of session ${ctx.sessionId} are waiting for the audit store; retry once it has caught up`,
      { waiting: ctx.st.audit.deltas.length },
    );
  }
  if (ctx.overdraft) {
    const info = wf.workflowInfo();
    if (
      ctx.updatesThisRun >= ctx.maxUpdatesPerRun * OVERDRAFT_UPDATES_FACTOR ||
      info.historyLength >= OVERDRAFT_HISTORY_EVENTS ||
      info.historySize >= OVERDRAFT_HISTORY_BYTES
    ) {
      throw new HypervisorError(
        'AUDIT_BACKLOG',
        `cannot ${what}: session ${ctx.sessionId} is past its continue-as-new point and the audit store holds its trail only through turn ${ctx.st.audit.stored} of ${ctx.st.audit.turn}; retry once it has caught up`,
        { waiting: ctx.st.audit.deltas.length },
      );
    }
  }
}
