/**
 * The delta audit trail (SPEC §7): one delta per turn, each naming its parent's
 * hash, so any edit to any delta breaks the chain; the Merkle root over the
 * delta hashes is kept incrementally so termination never rehashes the trail.
 */
import { z } from 'zod';
import {
  DidSchema,
  TimestampSchema,
  fastPaths,
  hasOnlyKeys,
  isDid,
  isNonEmptyString,
  isRecord,
  isTimestamp,
  parse,
} from './common';
import { HypervisorError } from './errors';
import { canonicalJson, jsonString, sha256Hex } from './hash';
import { DeltaSignatureSchema, IDENTITY_CHANGE, deltaSignatureFault, MAX_SIGNERS } from './identity';
import {
  createMerkleAccumulator,
  merkleAppend,
  merkleRoot,
  merkleRootFromScratch,
  type MerkleAccumulator,
} from './merkle';

export const ChangeOperationSchema = z.enum(['add', 'modify', 'delete', 'permission']);
export type ChangeOperation = z.infer<typeof ChangeOperationSchema>;

const IdSchema = z.string().min(1, 'must not be empty').max(256, 'must be at most 256 characters');
const HashTextSchema = z.string().min(1, 'must not be empty').max(256, 'must be at most 256 characters');
const DeltaHashSchema = z.string().regex(/^[0-9a-f]{64}$/, 'must be a SHA-256 hex digest');

/** A change as the caller reports it; agentDid defaults to the delta's agent. */
export const ChangeInputSchema = z.strictObject({
  path: z.string().min(1, 'must not be empty'),
  operation: ChangeOperationSchema,
  contentHash: HashTextSchema.optional(),
  previousHash: HashTextSchema.optional(),
  agentDid: DidSchema.optional(),
});
export type ChangeInput = z.infer<typeof ChangeInputSchema>;

/**
 * The signatures of the request that caused a delta (issue 12), inside the
 * hashed fields; absent on a delta no signed request caused, whose hash is
 * then what it always was.
 */
const DeltaSignaturesSchema = z.array(DeltaSignatureSchema).min(1).max(MAX_SIGNERS);

export const DeltaInputSchema = z.strictObject({
  deltaId: IdSchema,
  sessionId: IdSchema,
  agentDid: DidSchema,
  at: TimestampSchema,
  changes: z.array(ChangeInputSchema),
  signatures: DeltaSignaturesSchema.optional(),
});
export type DeltaInput = z.infer<typeof DeltaInputSchema>;

export const ChangeSchema = z.strictObject({
  path: z.string().min(1),
  operation: ChangeOperationSchema,
  contentHash: HashTextSchema.optional(),
  previousHash: HashTextSchema.optional(),
  agentDid: DidSchema,
});
export type Change = z.infer<typeof ChangeSchema>;

/** A recorded delta. `hash` covers every other field. */
export const DeltaSchema = z.strictObject({
  deltaId: IdSchema,
  turn: z.number().int().positive(),
  sessionId: IdSchema,
  agentDid: DidSchema,
  at: TimestampSchema,
  changes: z.array(ChangeSchema),
  signatures: DeltaSignaturesSchema.optional(),
  parentHash: DeltaHashSchema.nullable(),
  hash: DeltaHashSchema,
});
export type Delta = z.infer<typeof DeltaSchema>;

/**
 * Per-session audit state, plain JSON, O(log n) in the trail's length: the
 * last turn, the chain head, the Merkle frontier, and the deltas held here.
 * In a session workflow those are only the deltas not yet in the audit store
 * (turns stored+1 … turn); the in-memory core, which has no store, holds them
 * all (stored stays 0).
 */
export interface AuditState {
  sessionId: string;
  /** The last turn recorded: the trail's delta count. */
  turn: number;
  /** The last delta's hash (the next delta's parent), null before the first. */
  head: string | null;
  /** The last turn the audit store has confirmed; deltas[0] is turn stored+1. */
  stored: number;
  deltas: Delta[];
  merkle: MerkleAccumulator;
  /**
   * The Merkle frontier over turns 1 … stored as the audit store holds them,
   * kept only while deltas wait (with none waiting it is `merkle`).
   */
  storedMerkle?: MerkleAccumulator;
}

export function createAuditState(sessionId: string): AuditState {
  const id = isNonEmptyString(sessionId, 256) ? sessionId : parse(IdSchema, sessionId, 'audit sessionId');
  return { sessionId: id, turn: 0, head: null, stored: 0, deltas: [], merkle: createMerkleAccumulator() };
}

/** What a session says of its trail: the rest of it is in the audit store (turns 1 … stored). */
export interface AuditHead {
  sessionId: string;
  deltaCount: number;
  merkleRoot: string | null;
  head: string | null;
  stored: number;
  /** Turns stored+1 … deltaCount, not yet in the store. */
  pending: Delta[];
}

/** Validate a reported delta, then append it. */
export function captureDelta(state: AuditState, input: unknown): Delta {
  return appendDelta(
    state,
    (fastPaths.delta ? fastDeltaInput(input) : undefined) ?? parse(DeltaInputSchema, input, 'delta'),
  );
}

const DELTA_INPUT_KEYS: ReadonlySet<string> = new Set(Object.keys(DeltaInputSchema.shape));
const CHANGE_INPUT_KEYS: ReadonlySet<string> = new Set(Object.keys(ChangeInputSchema.shape));

/**
 * DeltaInputSchema's result for a plainly valid delta, else undefined (then
 * zod parses it and names what is wrong). See "Fast accept paths" in common.ts.
 */
export function fastDeltaInput(input: unknown): DeltaInput | undefined {
  if (!isRecord(input) || !hasOnlyKeys(input, DELTA_INPUT_KEYS) || 'signatures' in input) return undefined;
  const { deltaId, sessionId, agentDid, at, changes } = input;
  if (
    !isNonEmptyString(deltaId, 256) ||
    !isNonEmptyString(sessionId, 256) ||
    !isDid(agentDid) ||
    !isTimestamp(at) ||
    !Array.isArray(changes)
  ) {
    return undefined;
  }
  const out: ChangeInput[] = [];
  for (let i = 0; i < changes.length; i++) {
    const c = fastChangeInput(changes[i]);
    if (c === undefined) return undefined;
    out.push(c);
  }
  return { deltaId, sessionId, agentDid, at, changes: out };
}

function fastChangeInput(c: unknown): ChangeInput | undefined {
  if (!isRecord(c) || !hasOnlyKeys(c, CHANGE_INPUT_KEYS)) return undefined;
  const { path, operation, contentHash, previousHash, agentDid } = c;
  if (
    !isNonEmptyString(path) ||
    !(operation === 'add' || operation === 'modify' || operation === 'delete' || operation === 'permission')
  ) {
    return undefined;
  }
  const out: ChangeInput = { path, operation };
  // Optional fields: absent stays absent; a present key (even undefined) is kept, as zod does.
  if ('contentHash' in c) {
    if (contentHash !== undefined && !isNonEmptyString(contentHash, 256)) return undefined;
    out.contentHash = contentHash;
  }
  if ('previousHash' in c) {
    if (previousHash !== undefined && !isNonEmptyString(previousHash, 256)) return undefined;
    out.previousHash = previousHash;
  }
  if ('agentDid' in c) {
    if (agentDid !== undefined && !isDid(agentDid)) return undefined;
    out.agentDid = agentDid;
  }
  return out;
}

/**
 * Append a delta whose input the caller has already validated (the hot path
 * used by the session): assign the turn, link the parent, hash, and feed the
 * Merkle accumulator. Changes are copied so later edits by the caller cannot
 * alter the record.
 */
export function appendDelta(state: AuditState, input: DeltaInput): Delta {
  if (input.sessionId !== state.sessionId) {
    throw new HypervisorError(
      'INVALID_INPUT',
      `invalid delta: sessionId "${input.sessionId}" does not match the audit log of session "${state.sessionId}"`,
    );
  }
  const changes: Change[] = [];
  for (const c of input.changes) {
    const change: Change = { path: c.path, operation: c.operation, agentDid: c.agentDid ?? input.agentDid };
    if (c.contentHash !== undefined) change.contentHash = c.contentHash;
    if (c.previousHash !== undefined) change.previousHash = c.previousHash;
    changes.push(change);
  }
  const delta: Delta = {
    deltaId: input.deltaId,
    turn: state.turn + 1,
    sessionId: state.sessionId,
    agentDid: input.agentDid,
    at: input.at,
    changes,
    parentHash: state.head,
    hash: '',
  };
  if (input.signatures !== undefined) delta.signatures = input.signatures.map((x) => ({ ...x }));
  delta.hash = deltaHash(delta);
  // Everything before this delta is stored (a workflow's state): its frontier is the stored one.
  if (state.deltas.length === 0 && state.stored > 0 && state.stored === state.turn) {
    state.storedMerkle = { count: state.merkle.count, frontier: state.merkle.frontier.slice() };
  }
  state.deltas.push(delta);
  state.turn = delta.turn;
  state.head = delta.hash;
  merkleAppend(state.merkle, delta.hash);
  return delta;
}

/** Merkle root of the session's deltas (null before the first delta). O(log n). */
export function auditMerkleRoot(state: AuditState): string | null {
  return merkleRoot(state.merkle);
}

/** SHA-256 hex of the canonical JSON of every field but `hash` (deltaJson). */
export function deltaHash(delta: Delta): string {
  return sha256Hex(deltaJson(delta));
}

/** The canonical JSON of every field but `hash`, written out in sorted key order. */
export function deltaJson(delta: Delta): string {
  let text = '{"agentDid":' + json(delta.agentDid) + ',"at":' + json(delta.at) + ',"changes":';
  const changes: unknown = delta.changes;
  if (Array.isArray(changes)) {
    text += '[';
    for (let i = 0; i < changes.length; i++) text += (i > 0 ? ',' : '') + changeJson(changes[i]);
    text += ']';
  } else {
    text += json(changes);
  }
  text +=
    ',"deltaId":' +
    json(delta.deltaId) +
    ',"parentHash":' +
    json(delta.parentHash) +
    ',"sessionId":' +
    json(delta.sessionId);
  // Only a signed request's delta has the field: every other hash is what it was before signatures existed.
  if (delta.signatures !== undefined) text += ',"signatures":' + canonicalJson(delta.signatures);
  text += ',"turn":' + json(delta.turn) + '}';
  return text;
}

function changeJson(change: unknown): string {
  if (typeof change !== 'object' || change === null || Array.isArray(change)) return json(change);
  const c = change as Change;
  let text = '{"agentDid":' + json(c.agentDid);
  if (c.contentHash !== undefined) text += ',"contentHash":' + json(c.contentHash);
  text += ',"operation":' + json(c.operation) + ',"path":' + json(c.path);
  if (c.previousHash !== undefined) text += ',"previousHash":' + json(c.previousHash);
  return text + '}';
}

function json(value: unknown): string {
  return typeof value === 'string' ? jsonString(value) : canonicalJson(value === undefined ? null : value);
}

/** Who the session records deltas no agent caused as (workflows/session/context.ts HYPERVISOR_DID). */
export const HYPERVISOR_AUTHOR = 'did:hv:hypervisor';

/** A did:key session says so on turn 1 (IDENTITY_CHANGE): from there on every agent's delta carries its signature. */
export function isDidKeyTrail(first: Pick<Delta, 'turn' | 'changes'>): boolean {
  return (
    first.turn === 1 &&
    Array.isArray(first.changes) &&
    first.changes.some((c) => c.path === IDENTITY_CHANGE.path && c.contentHash === IDENTITY_CHANGE.contentHash)
  );
}

/** The signatures a trail holds, by delta: how many an offline verification checked. */
export function signatureCount(deltas: readonly Pick<Delta, 'signatures'>[]): number {
  let n = 0;
  for (const d of deltas) n += d.signatures?.length ?? 0;
  return n;
}

export type ChainVerification =
  | { ok: true; count: number }
  /** brokenAt: the 0-based index of the first broken delta; its turn is brokenAt + 1 (reasons name the turn). */
  | { ok: false; brokenAt: number; deltaId: string; reason: string };

/**
 * Recompute every hash and check the links: the first delta has no parent,
 * each other's parent is its predecessor's hash, turns run 1, 2, 3… and all
 * deltas belong to the first one's session. The first failure is reported.
 */
export function verifyChain(deltas: readonly Delta[]): ChainVerification {
  const first = deltas[0];
  const didKeyTrail = first !== undefined && isDidKeyTrail(first);
  for (let i = 0; i < deltas.length; i++) {
    const d = deltas[i] as Delta;
    const turn = i + 1;
    // Signatures first: a signature altered names itself, not just the hash it breaks.
    const fault = deltaSignatureFault(d, { didKeyTrail, hypervisorDid: HYPERVISOR_AUTHOR });
    if (fault !== undefined) return broken(i, d, `turn ${turn}: ${fault}`);
    const expected = deltaHash(d);
    if (d.hash !== expected)
      return broken(i, d, `turn ${turn} hash mismatch: recorded ${String(d.hash)}, recomputed ${expected}`);
    if (i === 0) {
      if (d.parentHash !== null) return broken(i, d, 'turn 1 must have no parent hash');
    } else {
      const prev = (deltas[i - 1] as Delta).hash;
      if (d.parentHash !== prev)
        return broken(i, d, `turn ${turn} parent hash ${String(d.parentHash)} is not turn ${turn - 1}'s hash ${prev}`);
    }
    if (d.turn !== turn) return broken(i, d, `the delta at turn ${turn} says it is turn ${String(d.turn)}`);
    if (d.sessionId !== (first as Delta).sessionId) {
      return broken(
        i,
        d,
        `turn ${turn} belongs to session ${String(d.sessionId)}, not ${String((first as Delta).sessionId)}`,
      );
    }
  }
  return { ok: true, count: deltas.length };
}

function broken(i: number, d: Delta, reason: string): ChainVerification {
  return { ok: false, brokenAt: i, deltaId: String(d.deltaId), reason };
}

/** Like verifyChain, but throws AUDIT_CHAIN_BROKEN naming the turn. */
export function assertChain(deltas: readonly Delta[]): void {
  const result = verifyChain(deltas);
  if (!result.ok) {
    throw new HypervisorError(
      'AUDIT_CHAIN_BROKEN',
      `audit chain broken at turn ${result.brokenAt + 1} (${result.deltaId}): ${result.reason}`,
      {
        turn: result.brokenAt + 1,
        deltaId: result.deltaId,
      },
    );
  }
}

export const AUDIT_TRAIL_FORMAT = 'agent-hypervisor.audit-trail/1';

/** A self-contained trail for offline verification (e.g. by the CLI). */
export const AuditTrailSchema = z.strictObject({
  format: z.literal(AUDIT_TRAIL_FORMAT),
  sessionId: IdSchema,
  deltaCount: z.number().int().nonnegative(),
  merkleRoot: DeltaHashSchema.nullable(),
  deltas: z.array(DeltaSchema),
});
export type AuditTrail = z.infer<typeof AuditTrailSchema>;

/**
 * Export the session's trail from a state that holds all of it. The deltas are
 * shared, not copied: serialise it, don't mutate it. A workflow's trail is in
 * the audit store: read it there (src/store/trail.ts).
 */
export function exportTrail(state: AuditState): AuditTrail {
  if (state.stored > 0) {
    throw new HypervisorError(
      'INVALID_TRANSITION',
      `the trail of session ${state.sessionId} is in the audit store up to turn ${state.stored}: read it from there`,
    );
  }
  return {
    format: AUDIT_TRAIL_FORMAT,
    sessionId: state.sessionId,
    deltaCount: state.deltas.length,
    merkleRoot: merkleRoot(state.merkle),
    deltas: state.deltas.slice(),
  };
}

export type TrailVerification =
  | { ok: true; count: number; merkleRoot: string | null }
  | { ok: false; brokenAt: number | null; deltaId: string | null; reason: string };

/**
 * Verify an exported trail with nothing but the trail: its shape (strict, so
 * no unhashed field can ride along; a malformed trail throws INVALID_INPUT),
 * the chain, the session of every delta, the delta count, and the Merkle root
 * recomputed by the definition.
 */
export function verifyTrail(input: unknown): TrailVerification {
  const trail = parse(AuditTrailSchema, input, 'audit trail');
  const chain = verifyChain(trail.deltas);
  if (!chain.ok) return chain;
  const foreign = trail.deltas.findIndex((d) => d.sessionId !== trail.sessionId);
  if (foreign >= 0) {
    const d = trail.deltas[foreign] as Delta;
    return {
      ok: false,
      brokenAt: foreign,
      deltaId: d.deltaId,
      reason: `turn ${foreign + 1} belongs to session ${d.sessionId}, not ${trail.sessionId}`,
    };
  }
  if (trail.deltaCount !== trail.deltas.length) {
    return {
      ok: false,
      brokenAt: null,
      deltaId: null,
      reason: `trail claims ${trail.deltaCount} deltas but holds ${trail.deltas.length}`,
    };
  }
  const root = merkleRootFromScratch(trail.deltas.map((d) => d.hash));
  if (root !== trail.merkleRoot) {
    return {
      ok: false,
      brokenAt: null,
      deltaId: null,
      reason: `Merkle root mismatch: trail claims ${String(trail.merkleRoot)}, deltas give ${String(root)}`,
    };
  }
  return { ok: true, count: trail.deltas.length, merkleRoot: root };
}
