/**
 * A session's trail read back from the audit store, and its offline
 * verification (SPEC §7): every stored row re-parsed and re-hashed, the chain
 * linked turn by turn, the Merkle root recomputed and compared with the
 * commitment. A fault is named by its turn. Nothing here trusts the workflow
 * engine: it works after Temporal's own data is gone.
 */
import {
  AUDIT_TRAIL_FORMAT,
  DeltaSchema,
  HYPERVISOR_AUTHOR,
  deltaHash,
  isDidKeyTrail,
  type AuditHead,
  type AuditTrail,
  type Delta,
} from '../core/audit';
import { deltaSignatureFault } from '../core/identity';
import type { Commitment } from '../core/commitment';
import { HypervisorError } from '../core/errors';
import { merkleProof, merkleRootFromProof, merkleRootFromScratch, type MerkleProof } from '../core/merkle';
import type { AuditStore, SessionRecord, StoredDeltaRow } from './types';

/** Rows read per round trip when a whole trail is read. */
const PAGE = 10_000;

/** Every stored row of a session with turn ≤ through, in turn order. */
export async function readRows(
  store: AuditStore,
  sessionId: string,
  through = Number.MAX_SAFE_INTEGER,
): Promise<StoredDeltaRow[]> {
  const rows: StoredDeltaRow[] = [];
  for (let from = 1; from <= through;) {
    const page = await store.readRows(sessionId, from, Math.min(PAGE, through - from + 1));
    rows.push(...page);
    if (page.length === 0) break;
    from = (page[page.length - 1] as StoredDeltaRow).turn + 1;
  }
  return rows;
}

/** A row's delta, or why it is not one. */
export function parseRow(row: StoredDeltaRow): { delta: Delta } | { error: string } {
  let value: unknown;
  try {
    value = JSON.parse(row.json);
  } catch (err) {
    return { error: `stored turn ${row.turn} is not JSON: ${(err as Error).message}` };
  }
  const parsed = DeltaSchema.safeParse(value);
  if (!parsed.success)
    return {
      error: `stored turn ${row.turn} is not a delta: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    };
  return { delta: parsed.data };
}

export interface StoredTrail {
  sessionId: string;
  /** The terminated session's record, or null while it is open. */
  record: SessionRecord | null;
  rows: StoredDeltaRow[];
  /** Deltas the session holds that the store does not have yet (an open session's). */
  pending: Delta[];
  deltaCount: number;
  /** What the trail should give: the committed root, or the open session's own. */
  merkleRoot: string | null;
}

/**
 * The whole trail: from the store alone once the session has terminated;
 * while it is open, the store's rows up to the session's `stored` turn plus
 * the deltas it still holds (`head`, from the session's auditHead query).
 */
export async function readTrail(
  store: AuditStore,
  sessionId: string,
  head?: () => Promise<AuditHead>,
): Promise<StoredTrail> {
  const record = await store.getSession(sessionId);
  if (record) {
    const rows = await readRows(store, sessionId, record.commitment.deltaCount);
    return {
      sessionId,
      record,
      rows,
      pending: [],
      deltaCount: record.commitment.deltaCount,
      merkleRoot: record.commitment.merkleRoot,
    };
  }
  if (!head) throw new HypervisorError('SESSION_NOT_FOUND', `the audit store has no terminated session ${sessionId}`);
  const h = await head();
  const rows = await readRows(store, sessionId, h.stored);
  return { sessionId, record: null, rows, pending: h.pending, deltaCount: h.deltaCount, merkleRoot: h.merkleRoot };
}

export type StoredTrailVerification =
  | { ok: true; count: number; merkleRoot: string | null }
  | { ok: false; turn: number | null; deltaId: string | null; reason: string };

/**
 * Verify a trail turn by turn: each row parses to a delta of this session with
 * this turn, its hash is what its fields give (the hash column too), its
 * parent is the previous turn's hash; then the count and the Merkle root.
 */
export function verifyStoredTrail(trail: StoredTrail): StoredTrailVerification {
  const items: ({ turn: number; delta: Delta; column: string | null } | { turn: number; error: string })[] = [
    ...trail.rows.map((row) => {
      const p = parseRow(row);
      return 'error' in p ? { turn: row.turn, error: p.error } : { turn: row.turn, delta: p.delta, column: row.hash };
    }),
    ...trail.pending.map((d) => ({ turn: d.turn, delta: d, column: null })),
  ];
  const hashes: string[] = [];
  let parent: string | null = null;
  let didKey = false;
  for (let i = 0; i < items.length; i++) {
    const item = items[i]!;
    const turn = i + 1;
    const fail = (reason: string): StoredTrailVerification => ({
      ok: false,
      turn,
      deltaId: 'delta' in item ? String(item.delta.deltaId) : null,
      reason,
    });
    if (item.turn !== turn)
      return {
        ok: false,
        turn,
        deltaId: null,
        reason: `turn ${turn} is missing (the next stored turn is ${item.turn})`,
      };
    if ('error' in item) return fail(item.error);
    const d = item.delta;
    if (d.turn !== turn) return fail(`turn ${turn} holds a delta that says it is turn ${d.turn}`);
    if (d.sessionId !== trail.sessionId)
      return fail(`turn ${turn} belongs to session ${d.sessionId}, not ${trail.sessionId}`);
    if (turn === 1) didKey = isDidKeyTrail(d);
    const fault = deltaSignatureFault(d, { didKeyTrail: didKey, hypervisorDid: HYPERVISOR_AUTHOR });
    if (fault !== undefined) return fail(`turn ${turn}: ${fault}`);
    const expected = deltaHash(d);
    if (d.hash !== expected) return fail(`turn ${turn} hash mismatch: recorded ${d.hash}, its fields give ${expected}`);
    if (item.column !== null && item.column !== d.hash)
      return fail(`turn ${turn}: the store's hash column ${item.column} differs from the delta's ${d.hash}`);
    if (d.parentHash !== parent)
      return fail(
        turn === 1
          ? 'turn 1 must have no parent hash'
          : `turn ${turn} parent hash ${String(d.parentHash)} is not turn ${turn - 1}'s hash ${String(parent)}`,
      );
    parent = d.hash;
    hashes.push(d.hash);
  }
  if (hashes.length !== trail.deltaCount) {
    return {
      ok: false,
      turn: hashes.length + 1,
      deltaId: null,
      reason: `${trail.record ? 'committed' : 'the session counts'} ${trail.deltaCount} deltas; the store holds ${hashes.length}`,
    };
  }
  const root = merkleRootFromScratch(hashes);
  if (root !== trail.merkleRoot) {
    return {
      ok: false,
      turn: null,
      deltaId: null,
      reason: `Merkle root mismatch: ${trail.record ? 'committed' : 'the session says'} ${String(trail.merkleRoot)}, the deltas give ${String(root)}`,
    };
  }
  return { ok: true, count: hashes.length, merkleRoot: root };
}

/** The trail as the export format (the deltas parsed; throws naming the first turn that is not a delta). */
export function toAuditTrail(trail: StoredTrail): AuditTrail {
  const deltas = trail.rows.map((row) => {
    const p = parseRow(row);
    if ('error' in p) throw new HypervisorError('AUDIT_CHAIN_BROKEN', p.error, { turn: row.turn });
    return p.delta;
  });
  return {
    format: AUDIT_TRAIL_FORMAT,
    sessionId: trail.sessionId,
    deltaCount: trail.deltaCount,
    merkleRoot: trail.merkleRoot,
    deltas: [...deltas, ...trail.pending],
  };
}

/** A Merkle inclusion proof of one turn under the committed root (SPEC §7). */
export interface InclusionProof {
  format: 'agent-hypervisor.inclusion-proof/1';
  sessionId: string;
  turn: number;
  delta: Delta;
  proof: MerkleProof;
  merkleRoot: string;
  commitment: Commitment;
}

/** Prove that `turn` is under the session's committed root. The whole stored trail is verified first. */
export function proveTurn(trail: StoredTrail, turn: number): InclusionProof {
  if (!trail.record)
    throw new HypervisorError(
      'INVALID_TRANSITION',
      `session ${trail.sessionId} has not terminated: there is no committed root to prove against yet`,
    );
  const v = verifyStoredTrail(trail);
  if (!v.ok)
    throw new HypervisorError(
      'AUDIT_CHAIN_BROKEN',
      `the stored trail of session ${trail.sessionId} does not verify${v.turn !== null ? ` at turn ${v.turn}` : ''}: ${v.reason}`,
      { turn: v.turn },
    );
  if (!Number.isSafeInteger(turn) || turn < 1 || turn > trail.deltaCount) {
    throw new HypervisorError(
      'INVALID_INPUT',
      `turn must be a whole number from 1 to ${trail.deltaCount} (session ${trail.sessionId} has ${trail.deltaCount} deltas), got ${turn}`,
    );
  }
  const deltas = trail.rows.map((r) => (parseRow(r) as { delta: Delta }).delta);
  const proof = merkleProof(
    deltas.map((d) => d.hash),
    turn - 1,
  );
  return {
    format: 'agent-hypervisor.inclusion-proof/1',
    sessionId: trail.sessionId,
    turn,
    delta: deltas[turn - 1]!,
    proof,
    merkleRoot: v.merkleRoot!,
    commitment: trail.record.commitment,
  };
}

/** Check a proof with nothing but itself: the delta's hash, the path, and the root it commits to. */
export function verifyInclusionProof(p: InclusionProof): { ok: boolean; reason: string } {
  if (p.delta.turn !== p.turn || p.proof.index !== p.turn - 1)
    return { ok: false, reason: `the proof is for turn ${p.proof.index + 1}, the delta is turn ${p.delta.turn}` };
  if (deltaHash(p.delta) !== p.delta.hash)
    return { ok: false, reason: `turn ${p.turn}'s hash is not what its fields give` };
  if (p.commitment.merkleRoot !== p.merkleRoot)
    return {
      ok: false,
      reason: `the proof's root ${p.merkleRoot} is not the committed ${String(p.commitment.merkleRoot)}`,
    };
  if (p.proof.count !== p.commitment.deltaCount)
    return {
      ok: false,
      reason: `the proof is for a tree of ${p.proof.count} deltas; the commitment counts ${p.commitment.deltaCount}`,
    };
  const root = merkleRootFromProof(p.delta.hash, p.proof);
  if (root !== p.merkleRoot)
    return { ok: false, reason: `the path leads to ${String(root)}, not the committed root ${p.merkleRoot}` };
  return { ok: true, reason: `turn ${p.turn} is under the committed root ${p.merkleRoot} of ${p.proof.count} deltas` };
}
