/**
 * Issue 24, N14: the hypervisor's signed tree heads. A head per stored turn and
 * a final one over the commitment; a verifier holding only the hypervisor's DID
 * finds a trail rewritten whole (chain and commitment together), an added
 * change, a stripped identity marker, removed turns — each named by its turn.
 */
import assert from 'node:assert/strict';
import { appendDelta, auditMerkleRoot, createAuditState, deltaHash, type Delta } from '../../src/core/audit';
import { generateDidKey, IDENTITY_CHANGE } from '../../src/core/identity';
import { createMerkleAccumulator } from '../../src/core/merkle';
import {
  TREE_HEAD_FORMAT,
  frontierOf,
  hypervisorKeyOf,
  signBatchHeads,
  treeHeadSignatureValid,
  verifyTreeHeads,
  type HypervisorKey,
  type SignedTreeHead,
} from '../../src/store/treeHeads';

const HV = 'did:hv:hypervisor';
const SID = 's-heads';

function trail(n: number, didKey: boolean): Delta[] {
  const state = createAuditState(SID);
  for (let i = 1; i <= n; i++) {
    const changes =
      i === 1
        ? [{ path: '/', operation: 'add' as const, contentHash: 'c0' }, ...(didKey ? [IDENTITY_CHANGE] : [])]
        : [{ path: `/p/${i}`, operation: 'add' as const, contentHash: `c${i}` }];
    appendDelta(state, { deltaId: `d${i}`, sessionId: SID, agentDid: HV, at: 1000 + i, changes });
  }
  return state.deltas;
}

/** Sign as the activity does: batch by batch, from the frontier of the turns before, then a final head. */
function sign(key: HypervisorKey, deltas: Delta[], batch: number, final = true): SignedTreeHead[] {
  const heads: SignedTreeHead[] = [];
  let base = createMerkleAccumulator();
  const identity = deltas[0]!.changes.some((c) => c.path === '/identity') ? ('did:key' as const) : ('none' as const);
  for (let i = 0; i < deltas.length; i += batch) {
    const r = signBatchHeads(key, SID, base, deltas.slice(i, i + batch), identity, 5000);
    heads.push(...r.heads);
    base = r.frontier;
  }
  if (final) {
    const last = heads[heads.length - 1]!.treeHead;
    heads.push(key.signTreeHead({ ...last, at: 6000, final: true }));
  }
  return heads;
}

/** Rewrite a trail from `index` on as an attacker with the store would: every hash and link recomputed. */
function rechain(deltas: Delta[], index: number): Delta[] {
  const out = structuredClone(deltas);
  for (let i = index; i < out.length; i++) {
    out[i]!.parentHash = i === 0 ? null : out[i - 1]!.hash;
    out[i]!.hash = deltaHash(out[i]!);
  }
  return out;
}

const commitmentOf = (deltas: Delta[]) => ({
  deltaCount: deltas.length,
  merkleRoot: frontierOf(deltas.map((d) => d.hash)).count ? auditMerkleRootOf(deltas) : null,
});
function auditMerkleRootOf(deltas: Delta[]): string | null {
  const s = createAuditState(SID);
  s.merkle = frontierOf(deltas.map((d) => d.hash));
  return auditMerkleRoot(s);
}

describe('signed tree heads (issue 24, N14)', () => {
  const key = hypervisorKeyOf(generateDidKey());
  const other = hypervisorKeyOf(generateDidKey());
  const deltas = trail(9, true);
  const heads = sign(key, deltas, 4);
  const verify = (
    d: Delta[],
    h: SignedTreeHead[],
    did = key.did,
    commitment: { deltaCount: number; merkleRoot: string | null } | null = commitmentOf(d),
  ) => verifyTreeHeads({ sessionId: SID, did, deltas: d, heads: h, signedThrough: d.length, commitment });

  it("signs one head per turn, whatever the batches, over the root and chain hash at that size; the signature is the DID's", () => {
    assert.equal(heads.length, 10);
    for (const [i, h] of heads.slice(0, 9).entries()) {
      assert.equal(h.treeHead.format, TREE_HEAD_FORMAT);
      assert.equal(h.treeHead.size, i + 1);
      assert.equal(h.treeHead.head, deltas[i]!.hash);
      assert.equal(h.treeHead.root, auditMerkleRootOf(deltas.slice(0, i + 1)));
      assert.equal(h.treeHead.identity, 'did:key');
      assert.ok(treeHeadSignatureValid(h, key.did));
      assert.ok(!treeHeadSignatureValid(h, other.did));
    }
    assert.deepEqual(
      sign(key, deltas, 1).map((h) => h.treeHead),
      heads.map((h) => h.treeHead),
      'batches of 1 and of 4 sign the same heads',
    );
    assert.deepEqual(verify(deltas, heads), { ok: true, checked: 10, final: true });
  });

  it('a change added to a delta, with the chain and the commitment rewritten, fails naming that turn', () => {
    const forged = structuredClone(deltas);
    forged[5]!.changes.push({ path: '/vfs/extra', operation: 'add', contentHash: 'evil', agentDid: HV });
    const rewritten = rechain(forged, 5);
    const v = verify(rewritten, heads);
    assert.equal(v.ok, false);
    assert.equal(!v.ok && v.turn, 6);
    assert.match(!v.ok ? v.reason : '', /^turn 6: the hypervisor signed chain hash/);
  });

  it('the /identity marker stripped (and every hash rewritten) fails at turn 1, naming the identity mode', () => {
    const forged = structuredClone(deltas);
    forged[0]!.changes = forged[0]!.changes.filter((c) => c.path !== '/identity');
    const v = verify(rechain(forged, 0), heads);
    assert.equal(!v.ok && v.turn, 1);
    assert.match(
      !v.ok ? v.reason : '',
      /turn 1: the hypervisor signed the trail as a did:key session; turn 1 has no \/identity marker/,
    );
  });

  it('turns removed from the end, with the commitment rewritten to match, fail naming the first removed turn', () => {
    const v = verify(deltas.slice(0, 7), heads);
    assert.equal(!v.ok && v.turn, 8);
    assert.match(!v.ok ? v.reason : '', /turn 8: the hypervisor signed a head at size 8, but the trail ends at turn 7/);
  });

  it('heads removed from the store, a missing final head, a foreign signer or a commitment the final head did not sign all fail', () => {
    const gap = heads.filter((h) => h.treeHead.size !== 3);
    assert.equal((verify(deltas, gap) as { turn: number }).turn, 3);
    assert.match((verify(deltas, heads.slice(0, 9)) as { reason: string }).reason, /no final tree head/);
    assert.equal((verify(deltas, heads, other.did) as { turn: number }).turn, 1);
    const resigned = sign(other, deltas, 4);
    assert.match((verify(deltas, resigned) as { reason: string }).reason, /not signed by the hypervisor/);
    assert.match(
      (verify(deltas, heads, key.did, { deltaCount: 9, merkleRoot: 'f'.repeat(64) }) as { reason: string }).reason,
      /the commitment .* is not what the hypervisor's final head signed/,
    );
    assert.match((verify(deltas, heads, key.did, null) as { reason: string }).reason, /holds no commitment/);
  });

  it('a live session: turns past what is stored need no head yet; a no-identity trail verifies as one', () => {
    const plain = trail(5, false);
    const h = sign(key, plain.slice(0, 3), 2, false);
    assert.deepEqual(
      verifyTreeHeads({ sessionId: SID, did: key.did, deltas: plain, heads: h, signedThrough: 3, commitment: null }),
      { ok: true, checked: 3, final: false },
    );
    assert.equal(
      (
        verifyTreeHeads({
          sessionId: SID,
          did: key.did,
          deltas: plain,
          heads: h,
          signedThrough: 4,
          commitment: null,
        }) as { turn: number }
      ).turn,
      4,
    );
  });
});
