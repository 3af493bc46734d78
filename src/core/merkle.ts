/**
 * Merkle root over delta hashes (SPEC §7).
 *
 * Definition: the leaves are the delta hash hex strings. At each level, nodes
 * are paired left+right; the odd one out at the end of a level pairs with
 * itself; a parent is sha256Hex(leftHex + rightHex). Levels shrink until one
 * node is left, which is the root. Zero leaves have no root (null). With one
 * leaf no pairing happens, so the root is that leaf's hash itself.
 *
 * Because the odd node pairs with itself, the root of a tree whose size is not
 * a power of two differs from RFC 6962's; the accumulator below folds its
 * frontier by the same rule, so both give identical roots (proved by test).
 */
import { sha256Hex } from './hash';

/** Parent of two nodes: SHA-256 of the two hex strings concatenated. */
export function merkleParent(left: string, right: string): string {
  return sha256Hex(left + right);
}

/** The definition, computed level by level. O(n) hashes. */
export function merkleRootFromScratch(leaves: readonly string[]): string | null {
  if (leaves.length === 0) return null;
  let level = leaves.slice();
  while (level.length > 1) {
    const next: string[] = [];
    for (let i = 0; i < level.length; i += 2) {
      const left = level[i] as string;
      next.push(merkleParent(left, level[i + 1] ?? left));
    }
    level = next;
  }
  return level[0] as string;
}

/**
 * Incremental Merkle state, plain JSON. Like a binary counter: `frontier`
 * holds the roots of the perfect subtrees covering the leaves so far, largest
 * first; there is one per set bit of `count` (bit k ↔ a subtree of 2^k leaves).
 */
export interface MerkleAccumulator {
  count: number;
  frontier: string[];
}

export function createMerkleAccumulator(): MerkleAccumulator {
  return { count: 0, frontier: [] };
}

/** Add a leaf: merge equal-height subtrees like a carry. O(1) hashes amortised, O(log n) worst case. */
export function merkleAppend(acc: MerkleAccumulator, leaf: string): void {
  let node = leaf;
  for (let c = acc.count; c % 2 === 1; c = (c - 1) / 2) {
    node = merkleParent(acc.frontier.pop() as string, node);
  }
  acc.frontier.push(node);
  acc.count += 1;
}

/**
 * The root by the definition, from the frontier, in O(log n) hashes.
 *
 * Walk up from the smallest subtree. Below its height t every level pairs
 * evenly. At level t the last node is that subtree's root, and the level has
 * an odd number of nodes, so (unless it is the only node) it pairs with
 * itself. Above t the last node R of each level is incomplete; at level k it
 * has a complete left sibling iff bit k of n is set (that sibling is the
 * frontier subtree of height k), otherwise R is the odd one out and pairs with
 * itself. Stop when R is the only node of its level.
 */
export function merkleRoot(acc: MerkleAccumulator): string | null {
  const { count, frontier } = acc;
  if (count === 0) return null;
  let i = frontier.length - 1;
  let m = count; // number of complete nodes at the current level
  while (m % 2 === 0) m /= 2;
  let node = frontier[i--] as string;
  if (m === 1) return node; // a perfect tree
  node = merkleParent(node, node);
  m = (m - 1) / 2;
  while (m > 0) {
    if (m % 2 === 1) {
      node = merkleParent(frontier[i--] as string, node);
      m = (m - 1) / 2;
    } else {
      node = merkleParent(node, node);
      m /= 2;
    }
  }
  return node;
}

/**
 * An inclusion proof: the siblings on the way from leaf `index` to the root
 * of a tree of `count` leaves, lowest first. A node that is the odd one out
 * of its level pairs with itself, so it has no sibling in the path: the
 * verifier knows when from `index` and `count`.
 */
export interface MerkleProof {
  index: number;
  count: number;
  path: string[];
}

/** The proof for leaf `index` (0-based), computed level by level: O(n) hashes. */
export function merkleProof(leaves: readonly string[], index: number): MerkleProof {
  if (!Number.isInteger(index) || index < 0 || index >= leaves.length) {
    throw new RangeError(`leaf index ${index} is outside a tree of ${leaves.length} leaves`);
  }
  const path: string[] = [];
  let level = leaves.slice();
  let i = index;
  while (level.length > 1) {
    const sibling = i ^ 1;
    if (sibling < level.length) path.push(level[sibling] as string);
    const next: string[] = [];
    for (let k = 0; k < level.length; k += 2) {
      const left = level[k] as string;
      next.push(merkleParent(left, level[k + 1] ?? left));
    }
    level = next;
    i >>= 1;
  }
  return { index, count: leaves.length, path };
}

/** The root that `leaf` and its proof lead to, or null when the proof does not fit its tree's shape. */
export function merkleRootFromProof(leaf: string, proof: MerkleProof): string | null {
  const { index, count, path } = proof;
  if (!Number.isSafeInteger(count) || count < 1 || !Number.isSafeInteger(index) || index < 0 || index >= count)
    return null;
  let node = leaf;
  let i = index;
  let m = count;
  let used = 0;
  while (m > 1) {
    if ((i ^ 1) < m) {
      const sibling = path[used++];
      if (typeof sibling !== 'string') return null;
      node = i % 2 === 0 ? merkleParent(node, sibling) : merkleParent(sibling, node);
    } else {
      node = merkleParent(node, node);
    }
    i >>= 1;
    m = Math.ceil(m / 2);
  }
  return used === path.length ? node : null;
}
