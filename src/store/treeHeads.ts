/**
 * Signed tree heads (issue 24, N14): what the worker's own Ed25519 key — the
 * hypervisor's did:key, held outside the audit store — says a trail was, so
 * that a store rewritten as a whole (chain, commitment and all, which live in
 * one database) no longer verifies. As a Certificate Transparency log signs
 * its tree heads, the worker signs, when it stores a batch, the head at every
 * turn of the batch ({session, size, Merkle root, chain hash at that size,
 * identity mode}), and at termination a final head that covers the commitment.
 * A head per turn binds every delta, signed or not, to the content it had when
 * the session recorded it: a verifier recomputes the root and the chain hash
 * at each signed size and names the first turn that differs.
 *
 * Node only (node:crypto's Ed25519: fast enough to sign every turn).
 */
import { createPrivateKey, createPublicKey, sign as edSign, verify as edVerify, type KeyObject } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { canonicalJson, sha256Hex } from '../core/hash';
import { isDidKeyTrail, type Delta } from '../core/audit';
import { publicKeyOf, type DidKey, type IdentityMode } from '../core/identity';
import { readKeyFile, writeNewKeyFile } from '../client/keys';
import { createMerkleAccumulator, merkleAppend, merkleRoot, type MerkleAccumulator } from '../core/merkle';

export const TREE_HEAD_FORMAT = 'agent-hypervisor.tree-head/1';
/** Prefixed to the head's hash: a tree-head signature is never a request signature, nor the reverse. */
export const TREE_HEAD_CONTEXT = 'agent-hypervisor.tree-head/1:';

/** What the hypervisor signs. `head`: the chain hash of turn `size` (null for size 0). */
export interface TreeHead {
  format: typeof TREE_HEAD_FORMAT;
  sessionId: string;
  size: number;
  root: string | null;
  head: string | null;
  identity: IdentityMode;
  /** When it was signed (epoch ms, the worker's clock). */
  at: number;
  /** The head termination signed: the trail has no turn after it (it covers the commitment). */
  final?: true;
}

export interface SignedTreeHead {
  treeHead: TreeHead;
  /** The hypervisor's did:key. */
  signer: string;
  /** Ed25519 over UTF-8 of TREE_HEAD_CONTEXT + treeHeadHash(treeHead), hex. */
  signature: string;
}

export function treeHeadHash(h: TreeHead): string {
  return sha256Hex(canonicalJson(h));
}

const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');

/** The worker's key: its DID, and a signer over tree heads. */
export interface HypervisorKey {
  readonly did: string;
  signTreeHead(h: TreeHead): SignedTreeHead;
}

export function hypervisorKeyOf(key: DidKey): HypervisorKey {
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519, Buffer.from(key.secretKey)]),
    format: 'der',
    type: 'pkcs8',
  });
  return {
    did: key.did,
    signTreeHead(h: TreeHead): SignedTreeHead {
      const signature = edSign(null, Buffer.from(TREE_HEAD_CONTEXT + treeHeadHash(h), 'utf8'), privateKey).toString(
        'hex',
      );
      return { treeHead: h, signer: key.did, signature };
    },
  };
}

export const HYPERVISOR_KEY_VAR = 'HV_HYPERVISOR_KEY';
export const HYPERVISOR_KEY_FILE = 'hypervisor.key';

/**
 * The worker's key: the did:key file HV_HYPERVISOR_KEY names (it must exist:
 * `hv keys new FILE` writes one), else <data dir>/hypervisor.key, written at
 * the first start. Never in the audit store: a store rewritten whole cannot
 * re-sign its heads.
 */
export function loadHypervisorKey(options: { file?: string; dataDir?: string } = {}): HypervisorKey {
  const named = options.file || process.env[HYPERVISOR_KEY_VAR];
  if (named) return hypervisorKeyOf(readKeyFile(named));
  const dir = path.resolve(__dirname, '..', '..', options.dataDir || process.env.HV_DATA_DIR || '.temporal');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, HYPERVISOR_KEY_FILE);
  try {
    return hypervisorKeyOf(writeNewKeyFile(file));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return hypervisorKeyOf(readKeyFile(file));
  }
}

const publicKeys = new Map<string, KeyObject | null>();
function publicKeyObject(did: string): KeyObject | null {
  let k = publicKeys.get(did);
  if (k === undefined) {
    const raw = publicKeyOf(did);
    k = raw
      ? createPublicKey({ key: Buffer.concat([SPKI_ED25519, Buffer.from(raw)]), format: 'der', type: 'spki' })
      : null;
    publicKeys.set(did, k);
  }
  return k;
}

/** Does `s` carry `did`'s signature over its head? Total: malformed input is false. */
export function treeHeadSignatureValid(s: SignedTreeHead, did: string): boolean {
  if (s.signer !== did || typeof s.signature !== 'string' || !/^[0-9a-f]{128}$/.test(s.signature)) return false;
  const key = publicKeyObject(did);
  if (!key) return false;
  try {
    return edVerify(
      null,
      Buffer.from(TREE_HEAD_CONTEXT + treeHeadHash(s.treeHead), 'utf8'),
      key,
      Buffer.from(s.signature, 'hex'),
    );
  } catch {
    return false;
  }
}

/**
 * The heads of a batch just stored, one per turn: `base` is the Merkle frontier
 * of the turns before the batch, `identity` the trail's mode. Returns them and
 * the frontier after the batch.
 */
export function signBatchHeads(
  key: HypervisorKey,
  sessionId: string,
  base: MerkleAccumulator,
  deltas: readonly Delta[],
  identity: IdentityMode,
  at: number,
): { heads: SignedTreeHead[]; frontier: MerkleAccumulator } {
  const acc: MerkleAccumulator = { count: base.count, frontier: base.frontier.slice() };
  const heads: SignedTreeHead[] = [];
  for (const d of deltas) {
    merkleAppend(acc, d.hash);
    heads.push(
      key.signTreeHead({
        format: TREE_HEAD_FORMAT,
        sessionId,
        size: acc.count,
        root: merkleRoot(acc),
        head: d.hash,
        identity,
        at,
      }),
    );
  }
  return { heads, frontier: acc };
}

/** The Merkle frontier of some hashes (when no stored frontier is at hand). */
export function frontierOf(hashes: readonly string[]): MerkleAccumulator {
  const acc = createMerkleAccumulator();
  for (const h of hashes) merkleAppend(acc, h);
  return acc;
}

/** The identity mode a trail's turn 1 declares. */
export function identityOfTurn1(first: Pick<Delta, 'turn' | 'changes'> | undefined): IdentityMode {
  return first !== undefined && isDidKeyTrail(first) ? 'did:key' : 'none';
}

export type TreeHeadVerification =
  { ok: true; checked: number; final: boolean } | { ok: false; turn: number | null; reason: string };

/**
 * Hold a trail to the hypervisor's signed heads (`did`): at every turn the
 * head signed for that size — the root and chain hash the deltas give there,
 * the identity mode turn 1 declares — and, for a terminated session, the
 * final head: the committed size and root, nothing signed beyond it. The
 * first turn that differs is named. `hashes` are the deltas' hashes in turn
 * order (already chain-verified); `signedThrough`: the turns that must have a
 * head (a live session's stored ones; its pending deltas have none yet).
 */
export function verifyTreeHeads(args: {
  sessionId: string;
  did: string;
  deltas: readonly Pick<Delta, 'turn' | 'changes' | 'hash'>[];
  heads: readonly SignedTreeHead[];
  signedThrough: number;
  commitment: { deltaCount: number; merkleRoot: string | null } | null;
}): TreeHeadVerification {
  const { sessionId, did, deltas, heads, signedThrough, commitment } = args;
  const identity = identityOfTurn1(deltas[0]);
  const bySize = new Map<number, SignedTreeHead>();
  let final: SignedTreeHead | undefined;
  for (const s of heads) {
    const size = s.treeHead?.size;
    if (!Number.isSafeInteger(size)) return { ok: false, turn: null, reason: 'a stored tree head has no size' };
    if (s.treeHead.final) final = s;
    else if (!bySize.has(size)) bySize.set(size, s);
  }
  const check = (s: SignedTreeHead, size: number, root: string | null, head: string | null): string | undefined => {
    const h = s.treeHead;
    if (!treeHeadSignatureValid(s, did))
      return `its tree head at size ${size} is not signed by the hypervisor ${did}${s.signer !== did ? ` (signer ${String(s.signer)})` : ''}`;
    if (h.format !== TREE_HEAD_FORMAT || h.sessionId !== sessionId)
      return `the hypervisor's head at size ${size} is of session ${String(h.sessionId)}, not ${sessionId}`;
    if (h.identity !== identity) {
      return `the hypervisor signed the trail as a ${h.identity === 'did:key' ? 'did:key' : 'no-identity'} session; turn 1 ${identity === 'did:key' ? 'declares did:key' : 'has no /identity marker'} — the identity mode was changed (and signatures with it)`;
    }
    if (h.head !== head)
      return `the hypervisor signed chain hash ${String(h.head)} at turn ${size}; the stored delta's is ${String(head)}`;
    if (h.root !== root)
      return `the hypervisor signed Merkle root ${String(h.root)} over ${size} deltas; the stored deltas give ${String(root)}`;
    return undefined;
  };
  const acc = createMerkleAccumulator();
  let checked = 0;
  for (let i = 0; i < deltas.length; i++) {
    const d = deltas[i]!;
    const turn = i + 1;
    merkleAppend(acc, d.hash);
    const s = bySize.get(turn);
    if (s === undefined) {
      if (turn <= signedThrough)
        return { ok: false, turn, reason: `turn ${turn}: no tree head signed by the hypervisor ${did} covers it` };
      continue;
    }
    const fault = check(s, turn, merkleRoot(acc), d.hash);
    if (fault !== undefined) return { ok: false, turn, reason: `turn ${turn}: ${fault}` };
    checked++;
  }
  const beyond = [...bySize.keys()].filter((n) => n > deltas.length).sort((a, b) => a - b)[0];
  if (beyond !== undefined)
    return {
      ok: false,
      turn: beyond,
      reason: `turn ${beyond}: the hypervisor signed a head at size ${beyond}, but the trail ends at turn ${deltas.length} (turns were removed)`,
    };
  if (commitment !== null) {
    if (final === undefined)
      return {
        ok: false,
        turn: null,
        reason: `no final tree head signed by the hypervisor ${did}: nothing it signed covers the commitment`,
      };
    const size = final.treeHead.size;
    if (size !== deltas.length) {
      const turn = Math.min(size, deltas.length) + 1;
      return {
        ok: false,
        turn,
        reason: `turn ${turn}: the hypervisor's final head is over ${size} deltas; the trail has ${deltas.length}`,
      };
    }
    const fault = check(final, size, merkleRoot(acc), deltas[size - 1]?.hash ?? null);
    if (fault !== undefined) return { ok: false, turn: size === 0 ? null : size, reason: `final head: ${fault}` };
    if (commitment.deltaCount !== size || commitment.merkleRoot !== final.treeHead.root) {
      return {
        ok: false,
        turn: null,
        reason: `the commitment (${String(commitment.merkleRoot)} over ${commitment.deltaCount} deltas) is not what the hypervisor's final head signed (${String(final.treeHead.root)} over ${size})`,
      };
    }
    checked++;
  } else if (final !== undefined) {
    return {
      ok: false,
      turn: null,
      reason: 'the hypervisor signed a final head, but the store holds no commitment for the session',
    };
  }
  return { ok: true, checked, final: final !== undefined };
}
