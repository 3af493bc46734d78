/**
 * What the audit store answers to a batch of the trail, and how a session takes it (SPEC §7
 * [resolved]): the store's chain is the session's from there on, even where a replay recomputed
 * a stored delta differently.
 */
import { deltaHash, type AuditState } from './audit';
import { createMerkleAccumulator, merkleAppend, type MerkleAccumulator } from './merkle';

/** What the audit store holds after an append: the hashes of turns fromTurn, fromTurn+1, … */
export interface StoredHashes {
  fromTurn: number;
  hashes: string[];
}

/**
 * The same, shorter for a long batch: the store's trail through turn `through` — its last hash and
 * its Merkle frontier (one hash per set bit of `through`, src/core/merkle.ts).
 */
export interface StoredFrontier {
  through: number;
  head: string;
  frontier: string[];
}

/** The Merkle frontier a StoredFrontier gives, when it is one (as many hashes as `through` has set bits). */
function frontierOfAnswer(stored: StoredFrontier): MerkleAccumulator | undefined {
  const { through, frontier } = stored;
  if (!Number.isSafeInteger(through) || through < 1 || !Array.isArray(frontier)) return undefined;
  let bits = 0;
  for (let n = through; n > 0; n = Math.floor(n / 2)) bits += n % 2;
  return frontier.length === bits ? { count: through, frontier: frontier.slice() } : undefined;
}

/**
 * The audit store confirmed every delta up to `throughTurn`: drop them from the
 * state. With `stored` (the store's own answer, which workflow history keeps)
 * the store's chain is the chain from here on: if this state's delta at that
 * turn is not the stored one (a replay recomputed it differently: workflow
 * time is not the same live and on replay), the deltas still waiting are
 * linked onto the stored head and the Merkle frontier is the stored one. They
 * are stored only later, so nothing the store holds is altered, and the next
 * batch names the head the store has.
 */
export function markStored(state: AuditState, throughTurn: number, stored?: StoredHashes | StoredFrontier): void {
  const byHashes = stored !== undefined && 'hashes' in stored ? stored : undefined;
  const byFrontier = stored !== undefined && !('hashes' in stored) ? stored : undefined;
  const storedHead = byHashes ? byHashes.hashes[byHashes.hashes.length - 1] : byFrontier?.head;
  const through =
    storedHead === undefined
      ? throughTurn
      : byHashes
        ? byHashes.fromTurn + byHashes.hashes.length - 1
        : byFrontier!.through;
  if (through <= state.stored) return;
  const base = state.storedMerkle ?? (state.stored === 0 ? createMerkleAccumulator() : undefined);
  const own = state.deltas.find((d) => d.turn === through);
  const keep = state.deltas.findIndex((d) => d.turn > through);
  const dropped = state.deltas.splice(0, keep < 0 ? state.deltas.length : keep);
  state.stored = Math.min(through, state.turn);
  delete state.storedMerkle;
  if (base === undefined) return;
  let merkle: MerkleAccumulator = { count: base.count, frontier: base.frontier.slice() };
  const storedFrontier = byFrontier && own?.hash !== storedHead ? frontierOfAnswer(byFrontier) : undefined;
  if (
    storedHead === undefined ||
    through > state.turn ||
    (byHashes !== undefined && (byHashes.fromTurn < 1 || byHashes.fromTurn > base.count + 1)) ||
    (byFrontier !== undefined && own?.hash !== storedHead && storedFrontier === undefined)
  ) {
    // No answer to chain on (a history from before the store's answer had hashes): the store holds this state's own.
    for (const d of dropped) merkleAppend(merkle, d.hash);
  } else {
    if (byHashes) {
      byHashes.hashes.forEach((h, i) => {
        if (byHashes.fromTurn + i > merkle.count) merkleAppend(merkle, h);
      });
    } else if (storedFrontier) {
      merkle = storedFrontier;
    } else {
      // The stored head is this state's own: so is every stored turn before it, and its frontier.
      for (const d of dropped) merkleAppend(merkle, d.hash);
    }
    // A chain hash covers every turn before it: one equal hash means the whole stored prefix is this state's.
    if (own?.hash !== storedHead) {
      let parent: string = storedHead;
      const full: MerkleAccumulator = { count: merkle.count, frontier: merkle.frontier.slice() };
      for (const d of state.deltas) {
        d.parentHash = parent;
        d.hash = deltaHash(d);
        merkleAppend(full, d.hash);
        parent = d.hash;
      }
      state.head = parent;
      state.merkle = full;
    }
  }
  // While deltas wait, the stored frontier is kept apart; with none waiting it is `merkle`.
  if (state.deltas.length > 0) state.storedMerkle = merkle;
}
