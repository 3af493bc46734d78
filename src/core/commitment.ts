/**
 * Termination artefacts (SPEC §7): the commitment of a session's Merkle root,
 * the queue that batches commitments for anchoring, and the garbage collection
 * that purges the VFS while keeping the forensic record.
 */
import { z } from 'zod';
import { DidSchema, TimestampSchema, parse } from './common';
import { HypervisorError } from './errors';
import { auditMerkleRoot, verifyChain, type AuditState, type Delta } from './audit';
import { merkleRootFromScratch } from './merkle';
import { purgeVfs, type VfsState } from './vfs';

const IdSchema = z.string().min(1, 'must not be empty').max(256, 'must be at most 256 characters');
const RootSchema = z.string().regex(/^[0-9a-f]{64}$/, 'must be a SHA-256 hex digest');

export const CommitmentInputSchema = z.strictObject({
  sessionId: IdSchema,
  merkleRoot: RootSchema.nullable(),
  participantDids: z.array(DidSchema),
  deltaCount: z.number().int().nonnegative(),
  committedAt: TimestampSchema,
  anchorTarget: z.string().min(1, 'must not be empty').default('local'),
  anchorTxId: z.string().min(1, 'must not be empty').nullable().default(null),
});
export type CommitmentInput = z.input<typeof CommitmentInputSchema>;

/** What a session commits to at termination. `anchorTxId` is set once anchored. */
export interface Commitment {
  sessionId: string;
  merkleRoot: string | null;
  participantDids: string[];
  deltaCount: number;
  committedAt: number;
  anchorTarget: string;
  anchorTxId: string | null;
}

/** Build a commitment; participant DIDs are de-duplicated and sorted so equal sessions commit equally. */
export function createCommitment(input: unknown): Commitment {
  const c = parse(CommitmentInputSchema, input, 'commitment');
  if (c.merkleRoot === null && c.deltaCount > 0) {
    throw new HypervisorError(
      'INVALID_INPUT',
      `invalid commitment: merkleRoot is null but deltaCount is ${c.deltaCount}`,
    );
  }
  if (c.merkleRoot !== null && c.deltaCount === 0) {
    throw new HypervisorError('INVALID_INPUT', 'invalid commitment: a session with no deltas has no Merkle root');
  }
  return { ...c, participantDids: [...new Set(c.participantDids)].sort() };
}

/** The commitment of an audit log as it stands. */
export function commitAudit(
  audit: AuditState,
  participantDids: readonly string[],
  committedAt: number,
  anchorTarget = 'local',
): Commitment {
  return createCommitment({
    sessionId: audit.sessionId,
    merkleRoot: auditMerkleRoot(audit),
    participantDids: [...participantDids],
    deltaCount: audit.turn,
    committedAt,
    anchorTarget,
  });
}

export type CommitmentVerification =
  | { ok: true; merkleRoot: string | null }
  | { ok: false; reason: string; committedRoot: string | null; computedRoot: string | null };

/**
 * Do these deltas give the committed root? The chain is verified first: a
 * tampered delta whose stale hash was left in place would otherwise still
 * reproduce the root.
 */
export function verifyCommitment(commitment: Commitment, deltas: readonly Delta[]): CommitmentVerification {
  const committedRoot = commitment.merkleRoot;
  const chain = verifyChain(deltas);
  if (!chain.ok)
    return {
      ok: false,
      reason: `audit chain broken at turn ${chain.brokenAt + 1}: ${chain.reason}`,
      committedRoot,
      computedRoot: null,
    };
  const computedRoot = merkleRootFromScratch(deltas.map((d) => d.hash));
  const fail = (reason: string): CommitmentVerification => ({ ok: false, reason, committedRoot, computedRoot });
  const foreign = deltas.find((d) => d.sessionId !== commitment.sessionId);
  if (foreign)
    return fail(`delta ${foreign.deltaId} belongs to session ${foreign.sessionId}, not ${commitment.sessionId}`);
  if (deltas.length !== commitment.deltaCount)
    return fail(`committed ${commitment.deltaCount} deltas, found ${deltas.length}`);
  if (computedRoot !== committedRoot)
    return fail(`Merkle root mismatch: committed ${String(committedRoot)}, computed ${String(computedRoot)}`);
  return { ok: true, merkleRoot: computedRoot };
}

// ── Anchoring batch queue ───────────────────────────────────────────────────

export interface AnchorRequest {
  sessionId: string;
  merkleRoot: string;
  anchorTarget: string;
  enqueuedAt: number;
}

/** FIFO of commitments waiting to be anchored, plain JSON. */
export interface AnchorQueueState {
  pending: AnchorRequest[];
}

export function createAnchorQueueState(): AnchorQueueState {
  return { pending: [] };
}

/**
 * Queue a commitment for anchoring. Returns null, queueing nothing, when there
 * is nothing to anchor (no root: an empty session) or it is already anchored
 * or already queued.
 */
export function enqueueAnchor(queue: AnchorQueueState, commitment: Commitment, at: number): AnchorRequest | null {
  if (commitment.merkleRoot === null || commitment.anchorTxId !== null) return null;
  if (queue.pending.some((r) => r.sessionId === commitment.sessionId && r.merkleRoot === commitment.merkleRoot))
    return null;
  const request = {
    sessionId: commitment.sessionId,
    merkleRoot: commitment.merkleRoot,
    anchorTarget: commitment.anchorTarget,
    enqueuedAt: at,
  };
  queue.pending.push(request);
  return request;
}

/** Remove and return up to `max` of the oldest requests. */
export function takeBatch(queue: AnchorQueueState, max: number): AnchorRequest[] {
  if (!Number.isInteger(max) || max < 1)
    throw new HypervisorError('INVALID_INPUT', `invalid batch size: max must be a positive integer, got ${max}`);
  return queue.pending.splice(0, max);
}

/** Put a batch whose anchoring failed back at the head of the queue, in order. */
export function requeueBatch(queue: AnchorQueueState, batch: readonly AnchorRequest[]): void {
  queue.pending.unshift(...batch);
}

/** Record the anchor transaction id once the root is anchored; a second, different id is rejected. */
export function recordAnchor(commitment: Commitment, anchorTxId: string): void {
  parse(z.string().min(1, 'must not be empty'), anchorTxId, 'anchorTxId');
  if (commitment.anchorTxId !== null && commitment.anchorTxId !== anchorTxId) {
    throw new HypervisorError(
      'INVALID_TRANSITION',
      `commitment of session ${commitment.sessionId} is already anchored as ${commitment.anchorTxId}; cannot re-anchor as ${anchorTxId}`,
    );
  }
  commitment.anchorTxId = anchorTxId;
}

// ── Garbage collection at termination ───────────────────────────────────────

export const DEFAULT_RETENTION_DAYS = 90;
const DAY_MS = 86_400_000;

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** What survives a session: the root forever, the deltas until `retainUntil`, the liability snapshot. */
export interface RetainedTrail {
  sessionId: string;
  merkleRoot: string | null;
  deltaCount: number;
  /** null once the retention period has passed and the deltas were dropped. */
  deltas: Delta[] | null;
  retainUntil: number;
  deltasPurgedAt: number | null;
  liabilitySnapshot: JsonValue;
  collectedAt: number;
}

export interface GcReport {
  sessionId: string;
  vfsFilesPurged: number;
  vfsSnapshotsPurged: number;
  vfsEditsPurged: number;
  deltasRetained: number;
  merkleRootRetained: boolean;
  liabilitySnapshotRetained: boolean;
  retainUntil: number;
}

export const GcInputSchema = z.object({
  now: TimestampSchema,
  retentionDays: z.number().nonnegative('must be ≥ 0').default(DEFAULT_RETENTION_DAYS),
});

/**
 * Collect a terminated session: purge its VFS (files, permissions, snapshots,
 * edit log), and keep its Merkle root, its deltas until now + retention, and
 * the liability snapshot. The audit state is left as it is.
 */
export function collectGarbage(args: {
  vfs: VfsState;
  audit: AuditState;
  liabilitySnapshot: JsonValue;
  now: number;
  retentionDays?: number;
}): { trail: RetainedTrail; report: GcReport } {
  const { now, retentionDays } = parse(
    GcInputSchema,
    { now: args.now, retentionDays: args.retentionDays },
    'garbage collection',
  );
  if (args.vfs.sessionId !== args.audit.sessionId) {
    throw new HypervisorError(
      'INVALID_INPUT',
      `garbage collection: VFS of session ${args.vfs.sessionId} does not match audit of session ${args.audit.sessionId}`,
    );
  }
  const vfsSnapshotsPurged = args.vfs.snapshots.length;
  const vfsEditsPurged = args.vfs.edits.length;
  const vfsFilesPurged = purgeVfs(args.vfs);
  const retainUntil = now + Math.round(retentionDays * DAY_MS);
  const merkleRoot = auditMerkleRoot(args.audit);
  const trail: RetainedTrail = {
    sessionId: args.audit.sessionId,
    merkleRoot,
    deltaCount: args.audit.turn,
    // The deltas held in memory; a session workflow's are in the audit store, kept there until retainUntil.
    deltas: args.audit.deltas.slice(),
    retainUntil,
    deltasPurgedAt: null,
    liabilitySnapshot: args.liabilitySnapshot,
    collectedAt: now,
  };
  return {
    trail,
    report: {
      sessionId: trail.sessionId,
      vfsFilesPurged,
      vfsSnapshotsPurged,
      vfsEditsPurged,
      deltasRetained: trail.deltaCount,
      merkleRootRetained: merkleRoot !== null,
      liabilitySnapshotRetained: true,
      retainUntil,
    },
  };
}

/** Drop the deltas of every trail whose retention has passed (now ≥ retainUntil); roots stay. */
export function expireRetainedTrails(
  trails: RetainedTrail[],
  now: number,
): { expired: string[]; deltasPurged: number } {
  parse(TimestampSchema, now, 'now');
  const expired: string[] = [];
  let deltasPurged = 0;
  for (const trail of trails) {
    if (trail.deltas === null || now < trail.retainUntil) continue;
    deltasPurged += trail.deltas.length;
    trail.deltas = null;
    trail.deltasPurgedAt = now;
    expired.push(trail.sessionId);
  }
  return { expired, deltasPurged };
}
