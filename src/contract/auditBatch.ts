/**
 * A batch of the trail on its way from the session to the audit store (the `appendAuditDeltas`
 * activity), in its wire form: what the store can derive is left out, since every byte of the
 * input is written to the session's history. The turns run on from `fromTurn`; each delta's session
 * is the batch's; its agent is the hypervisor unless it names another, and a change's agent its
 * delta's unless it names another; each parent is the previous delta's hash (the first one's is
 * `parentHash`, the head the store holds); and every hash is recomputed by the activity
 * (src/core/audit.ts deltaHash) — so the store receives the very deltas the session recorded.
 * `head` is the session's own hash of the last delta: if the recomputed chain does not end there,
 * the batch is refused, never stored under another chain.
 */
import { z } from 'zod';
import {
  ChangeInputSchema,
  DeltaSchema,
  HYPERVISOR_AUTHOR,
  deltaHash,
  type Change,
  type Delta,
} from '../core/audit';
import type { StoredFrontier, StoredHashes } from '../core/auditStored';
import type { MerkleAccumulator } from '../core/merkle';
import { parse } from '../core/common';
import { HypervisorError } from '../core/errors';

/** The most deltas one batch carries (the session's batching, workflows/session/trail.ts). */
export const AUDIT_BATCH_MAX_DELTAS = 256;

/** A delta without what the batch gives: its turn, session, parent and hash. */
export const WireDeltaSchema = z.strictObject({
  deltaId: DeltaSchema.shape.deltaId,
  /** Absent for the hypervisor's own deltas (HYPERVISOR_AUTHOR): most of a session's. */
  agentDid: DeltaSchema.shape.agentDid.optional(),
  at: DeltaSchema.shape.at,
  /** agentDid only where the change's agent is not the delta's. */
  changes: z.array(ChangeInputSchema),
  signatures: DeltaSchema.shape.signatures,
});
export type WireDelta = z.infer<typeof WireDeltaSchema>;

export const AuditBatchSchema = z.strictObject({
  sessionId: DeltaSchema.shape.sessionId,
  /** The session's chain (its first run's id): the store's owner check (activities/audit.ts ownerOf). */
  chain: z.string().min(1, 'must not be empty').max(256, 'must be at most 256 characters').optional(),
  fromTurn: DeltaSchema.shape.turn,
  /** The first delta's parent: the hash of turn fromTurn − 1 (null at turn 1). */
  parentHash: DeltaSchema.shape.parentHash,
  /** The last delta's hash as the session computed it. */
  head: DeltaSchema.shape.hash,
  deltas: z.array(WireDeltaSchema).min(1, 'must hold a delta').max(AUDIT_BATCH_MAX_DELTAS),
});
export type AuditBatch = z.infer<typeof AuditBatchSchema>;

/** The turns of a batch by reference: fromTurn through `through`, at most AUDIT_BATCH_MAX_DELTAS of them. */
const turns = { fromTurn: DeltaSchema.shape.turn, through: DeltaSchema.shape.turn };
function boundedTurns<T extends z.ZodType<{ fromTurn: number; through: number }>>(schema: T) {
  return schema
    .refine((t) => t.through >= t.fromTurn, { message: 'through must not be before fromTurn', path: ['through'] })
    .refine((t) => t.through - t.fromTurn < AUDIT_BATCH_MAX_DELTAS, {
      message: `must name at most ${AUDIT_BATCH_MAX_DELTAS} turns`,
      path: ['through'],
    });
}
export const AuditTurnsSchema = boundedTurns(z.strictObject(turns));
export type AuditTurns = z.infer<typeof AuditTurnsSchema>;

/**
 * A batch by reference: its deltas are in the session's history already (their causes are), so the
 * activity's input leaves them out and the activity reads their wire form from the session itself
 * (the pendingAuditBatch query of its own workflow execution), then checks that it chains from
 * `parentHash` to `head` — the session's word, written in history — as it checks an inline batch.
 */
export const AuditBatchRefSchema = boundedTurns(
  z.strictObject({
    sessionId: AuditBatchSchema.shape.sessionId,
    chain: AuditBatchSchema.shape.chain,
    ...turns,
    parentHash: AuditBatchSchema.shape.parentHash,
    head: AuditBatchSchema.shape.head,
  }),
);
export type AuditBatchRef = z.infer<typeof AuditBatchRefSchema>;

/** The reference to a wire-form batch: the same batch without its deltas. */
export function refOfAuditBatch(batch: AuditBatch): AuditBatchRef {
  const { deltas, ...ref } = batch;
  return { ...ref, through: batch.fromTurn + deltas.length - 1 };
}

/**
 * What the session takes from the store's answer: the trail the store holds through the batch,
 * recorded in history so a replay that recomputes a delta differently chains on it
 * (src/core/auditStored.ts markStored) — the batch's hashes, or, when shorter, the last one and the
 * Merkle frontier through it (the session needs the stored frontier, not only the head).
 */
export interface AuditBatchStored {
  stored: StoredHashes | StoredFrontier;
}

/** The store's answer to a batch of `hashes` from turn `fromTurn`: the shorter form, given the frontier through it. */
export function storedAnswer(fromTurn: number, hashes: string[], frontier?: MerkleAccumulator): AuditBatchStored {
  const head = hashes[hashes.length - 1];
  const through = fromTurn + hashes.length - 1;
  if (head !== undefined && frontier?.count === through && frontier.frontier.length + 1 < hashes.length)
    return { stored: { through, head, frontier: frontier.frontier.slice() } };
  return { stored: { fromTurn, hashes } };
}

/**
 * The wire form of consecutive deltas of one session, each naming the previous one's hash, or
 * undefined when they are not that (the session then sends them whole, and the store judges).
 */
export function toAuditBatch(sessionId: string, chain: string | undefined, deltas: readonly Delta[]): AuditBatch | undefined {
  const ref = refOfDeltas(sessionId, chain, deltas);
  if (ref === undefined) return undefined;
  const wire: WireDelta[] = [];
  for (const d of deltas) {
    const changes = d.changes.map((c) => {
      const out: z.infer<typeof ChangeInputSchema> = { path: c.path, operation: c.operation };
      if (c.agentDid !== d.agentDid) out.agentDid = c.agentDid;
      if (c.contentHash !== undefined) out.contentHash = c.contentHash;
      if (c.previousHash !== undefined) out.previousHash = c.previousHash;
      return out;
    });
    const w: WireDelta = { deltaId: d.deltaId, at: d.at, changes };
    if (d.agentDid !== HYPERVISOR_AUTHOR) w.agentDid = d.agentDid;
    if (d.signatures !== undefined) w.signatures = d.signatures;
    wire.push(w);
  }
  const { through: _, ...batch } = ref;
  return { ...batch, deltas: wire };
}

/**
 * The reference to consecutive deltas of one session, each naming the previous one's hash (what the session
 * sends: the activity reads their wire form from it), or undefined when they are not that.
 */
export function refOfDeltas(sessionId: string, chain: string | undefined, deltas: readonly Delta[]): AuditBatchRef | undefined {
  const first = deltas[0];
  const last = deltas[deltas.length - 1];
  if (first === undefined || last === undefined || deltas.length > AUDIT_BATCH_MAX_DELTAS) return undefined;
  for (let i = 0; i < deltas.length; i++) {
    const d = deltas[i] as Delta;
    const prev = deltas[i - 1];
    if (d.sessionId !== sessionId || d.turn !== first.turn + i) return undefined;
    if (prev !== undefined && d.parentHash !== prev.hash) return undefined;
  }
  return {
    sessionId,
    ...(chain !== undefined ? { chain } : {}),
    fromTurn: first.turn,
    parentHash: first.parentHash,
    head: last.hash,
    through: last.turn,
  };
}

/**
 * The deltas a batch stands for, hashed and chained, field for field (and key for key, so the
 * store's text of each is what the session's would be) as src/core/audit.ts appendDelta made them.
 * Whether the chain ends at the batch's head is deltasOfAuditBatch's check.
 */
export function fromAuditBatch(batch: AuditBatch): Delta[] {
  const out: Delta[] = [];
  let parent = batch.parentHash;
  batch.deltas.forEach((w, i) => {
    const agentDid = w.agentDid ?? HYPERVISOR_AUTHOR;
    const changes = w.changes.map((c) => {
      const change: Change = { path: c.path, operation: c.operation, agentDid: c.agentDid ?? agentDid };
      if (c.contentHash !== undefined) change.contentHash = c.contentHash;
      if (c.previousHash !== undefined) change.previousHash = c.previousHash;
      return change;
    });
    const delta: Delta = {
      deltaId: w.deltaId,
      turn: batch.fromTurn + i,
      sessionId: batch.sessionId,
      agentDid,
      at: w.at,
      changes,
      parentHash: parent,
      hash: '',
    };
    if (w.signatures !== undefined) delta.signatures = w.signatures;
    delta.hash = deltaHash(delta);
    parent = delta.hash;
    out.push(delta);
  });
  return out;
}

/**
 * The deltas of a batch as it came (INVALID_INPUT naming the field when it is not one, or when its
 * recomputed chain does not end at its head). The input itself is expanded once valid, not zod's
 * copy of it: a signature's keys keep their order, so the store's text is the session's.
 */
export function deltasOfAuditBatch(input: unknown): Delta[] {
  parse(AuditBatchSchema, input, 'audit batch');
  const batch = input as AuditBatch;
  const deltas = fromAuditBatch(batch);
  const last = deltas[deltas.length - 1] as Delta;
  if (last.hash !== batch.head) {
    throw new HypervisorError(
      'INVALID_INPUT',
      `invalid audit batch: turns ${batch.fromTurn} to ${last.turn} of session ${batch.sessionId}, chained from ${batch.parentHash ?? 'the trail start'}, hash to ${last.hash}, not to the session's head ${batch.head}; nothing is stored`,
      { fromTurn: batch.fromTurn, head: batch.head, recomputed: last.hash },
    );
  }
  return deltas;
}
