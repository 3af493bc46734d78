import assert from 'node:assert/strict';
import { captureDelta, createAuditState, auditMerkleRoot, type AuditState } from '../../src/core/audit';
import {
  collectGarbage,
  commitAudit,
  createAnchorQueueState,
  createCommitment,
  enqueueAnchor,
  expireRetainedTrails,
  recordAnchor,
  requeueBatch,
  takeBatch,
  verifyCommitment,
  type Commitment,
} from '../../src/core/commitment';
import { createVfsState, setPermissions, takeSnapshot, writeFile } from '../../src/core/vfs';
import { sha256Hex } from '../../src/core/hash';
import { isHypervisorError, type ErrorCode } from '../../src/core/errors';

const ALICE = 'did:mesh:alice';
const BOB = 'did:mesh:bob';
const DAY = 86_400_000;

const rejects = (fn: () => unknown, code: ErrorCode, pattern: RegExp) =>
  assert.throws(fn, (e) => isHypervisorError(e, code) && pattern.test(e.message), `${code} ${pattern}`);

function audit(n: number, sessionId = 's1'): AuditState {
  const state = createAuditState(sessionId);
  for (let i = 0; i < n; i++) {
    captureDelta(state, {
      deltaId: `d${i}`,
      sessionId,
      agentDid: ALICE,
      at: i,
      changes: [{ path: `/sessions/${sessionId}/f${i}`, operation: 'add', contentHash: sha256Hex(String(i)) }],
    });
  }
  return state;
}
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

describe('commitment', () => {
  it('commits session, root, sorted unique participants, count, time; anchor target local by default', () => {
    const a = audit(5);
    const c = commitAudit(a, [BOB, ALICE, BOB], 1000);
    assert.deepEqual(c, {
      sessionId: 's1',
      merkleRoot: auditMerkleRoot(a),
      participantDids: [ALICE, BOB],
      deltaCount: 5,
      committedAt: 1000,
      anchorTarget: 'local',
      anchorTxId: null,
    });
    assert.equal(commitAudit(a, [], 1, 'ethereum:sepolia').anchorTarget, 'ethereum:sepolia');
  });

  it('an empty session commits no root', () => {
    const c = commitAudit(audit(0), [ALICE], 1);
    assert.equal(c.merkleRoot, null);
    assert.equal(c.deltaCount, 0);
    assert.deepEqual(verifyCommitment(c, []), { ok: true, merkleRoot: null });
  });

  it('rejects malformed or inconsistent commitments naming the field', () => {
    const base = {
      sessionId: 's1',
      merkleRoot: sha256Hex('x'),
      participantDids: [ALICE],
      deltaCount: 1,
      committedAt: 1,
    };
    rejects(() => createCommitment({ ...base, merkleRoot: 'xyz' }), 'INVALID_INPUT', /merkleRoot/);
    rejects(() => createCommitment({ ...base, participantDids: ['alice'] }), 'INVALID_INPUT', /participantDids\.0/);
    rejects(() => createCommitment({ ...base, deltaCount: -1 }), 'INVALID_INPUT', /deltaCount/);
    rejects(() => createCommitment({ ...base, merkleRoot: null }), 'INVALID_INPUT', /merkleRoot is null/);
    rejects(() => createCommitment({ ...base, deltaCount: 0 }), 'INVALID_INPUT', /no deltas/);
  });

  it("verifies the session's deltas against the committed root", () => {
    const a = audit(7);
    const c = commitAudit(a, [ALICE], 9);
    assert.deepEqual(verifyCommitment(c, clone(a.deltas)), { ok: true, merkleRoot: c.merkleRoot });
  });

  it('fails on a tampered delta even if its stale hash was kept, on a missing or extra delta, and on another root', () => {
    const a = audit(7);
    const c = commitAudit(a, [ALICE], 9);
    const tampered = clone(a.deltas);
    tampered[3]!.agentDid = BOB;
    const r1 = verifyCommitment(c, tampered);
    assert.ok(!r1.ok && /chain broken at turn 4/.test(r1.reason));
    const r2 = verifyCommitment(c, a.deltas.slice(0, 6));
    assert.ok(!r2.ok && /committed 7 deltas, found 6/.test(r2.reason));
    const longer = audit(8);
    const r3 = verifyCommitment(c, longer.deltas);
    assert.ok(!r3.ok);
    const r4 = verifyCommitment({ ...c, deltaCount: 7, merkleRoot: sha256Hex('other') }, a.deltas);
    assert.ok(!r4.ok && /Merkle root mismatch/.test(r4.reason) && r4.computedRoot === c.merkleRoot);
    const r5 = verifyCommitment({ ...c, sessionId: 's2' }, a.deltas);
    assert.ok(!r5.ok && /belongs to session s1/.test(r5.reason));
  });

  it('records the anchor transaction once; a different second id is rejected', () => {
    const c = commitAudit(audit(1), [ALICE], 1);
    recordAnchor(c, 'tx-1');
    recordAnchor(c, 'tx-1');
    assert.equal(c.anchorTxId, 'tx-1');
    rejects(() => recordAnchor(c, 'tx-2'), 'INVALID_TRANSITION', /already anchored as tx-1/);
    rejects(() => recordAnchor(c, ''), 'INVALID_INPUT', /anchorTxId/);
  });
});

describe('commitment: anchoring batch queue', () => {
  const commit = (id: string): Commitment => commitAudit(audit(2, id), [ALICE], 1);

  it('batches FIFO, at most max per batch, and requeues a failed batch at the head', () => {
    const q = createAnchorQueueState();
    for (const id of ['s1', 's2', 's3']) assert.ok(enqueueAnchor(q, commit(id), 10));
    const b1 = takeBatch(q, 2);
    assert.deepEqual(
      b1.map((r) => r.sessionId),
      ['s1', 's2'],
    );
    assert.deepEqual(b1[0], {
      sessionId: 's1',
      merkleRoot: commit('s1').merkleRoot,
      anchorTarget: 'local',
      enqueuedAt: 10,
    });
    requeueBatch(q, b1);
    assert.deepEqual(
      takeBatch(q, 10).map((r) => r.sessionId),
      ['s1', 's2', 's3'],
    );
    assert.deepEqual(takeBatch(q, 10), []);
    assert.deepEqual(clone(q), q);
  });

  it('queues nothing without a root, when already anchored, or already queued', () => {
    const q = createAnchorQueueState();
    assert.equal(enqueueAnchor(q, commitAudit(audit(0), [ALICE], 1), 1), null);
    const anchored = commit('s1');
    recordAnchor(anchored, 'tx');
    assert.equal(enqueueAnchor(q, anchored, 1), null);
    assert.ok(enqueueAnchor(q, commit('s2'), 1));
    assert.equal(enqueueAnchor(q, commit('s2'), 2), null);
    assert.equal(q.pending.length, 1);
  });

  it('rejects a batch size that is not a positive integer', () => {
    rejects(() => takeBatch(createAnchorQueueState(), 0), 'INVALID_INPUT', /max/);
    rejects(() => takeBatch(createAnchorQueueState(), 1.5), 'INVALID_INPUT', /max/);
  });
});

describe('commitment: garbage collection at termination', () => {
  function session() {
    const vfs = createVfsState('s1');
    writeFile(vfs, { path: 'a', content: '1', agentDid: ALICE, at: 1 });
    writeFile(vfs, { path: 'b', content: '2', agentDid: ALICE, at: 2 });
    writeFile(vfs, { path: 'a', content: '3', agentDid: BOB, at: 3 });
    setPermissions(vfs, { path: 'a', allowedDids: [ALICE], agentDid: ALICE, at: 4 });
    takeSnapshot(vfs, { snapshotId: 'snap', agentDid: ALICE, at: 5 });
    return { vfs, audit: audit(4) };
  }

  it('purges the VFS, keeps the root, deltas for 90 days and the liability snapshot, and reports counts', () => {
    const { vfs, audit: a } = session();
    const liability = { bonds: [{ voucher: ALICE, vouchee: BOB, amount: 0.18 }] };
    const { trail, report } = collectGarbage({ vfs, audit: a, liabilitySnapshot: liability, now: 1_000 });
    assert.deepEqual(report, {
      sessionId: 's1',
      vfsFilesPurged: 2,
      vfsSnapshotsPurged: 1,
      vfsEditsPurged: 4,
      deltasRetained: 4,
      merkleRootRetained: true,
      liabilitySnapshotRetained: true,
      retainUntil: 1_000 + 90 * DAY,
    });
    assert.deepEqual(vfs.files, {});
    assert.equal(trail.merkleRoot, auditMerkleRoot(a));
    assert.equal(trail.deltas!.length, 4);
    assert.deepEqual(trail.liabilitySnapshot, liability);
    assert.deepEqual(clone(trail), trail);
  });

  it('honours a configured retention period', () => {
    const { vfs, audit: a } = session();
    assert.equal(
      collectGarbage({ vfs, audit: a, liabilitySnapshot: null, now: 0, retentionDays: 7 }).trail.retainUntil,
      7 * DAY,
    );
    rejects(
      () => collectGarbage({ vfs, audit: a, liabilitySnapshot: null, now: 0, retentionDays: -1 }),
      'INVALID_INPUT',
      /retentionDays/,
    );
    rejects(
      () => collectGarbage({ vfs, audit: audit(1, 's2'), liabilitySnapshot: null, now: 0 }),
      'INVALID_INPUT',
      /does not match/,
    );
  });

  it('drops deltas past retention, keeping roots; idempotent', () => {
    const t1 = collectGarbage({ ...session(), liabilitySnapshot: null, now: 0 }).trail;
    const s2 = { vfs: createVfsState('s2'), audit: audit(3, 's2') };
    const t2 = collectGarbage({ ...s2, liabilitySnapshot: null, now: 10 * DAY }).trail;
    const trails = [t1, t2];
    assert.deepEqual(expireRetainedTrails(trails, 90 * DAY - 1), { expired: [], deltasPurged: 0 });
    assert.deepEqual(expireRetainedTrails(trails, 90 * DAY), { expired: ['s1'], deltasPurged: 4 });
    assert.equal(t1.deltas, null);
    assert.equal(t1.deltasPurgedAt, 90 * DAY);
    assert.equal(t1.merkleRoot, auditMerkleRoot(audit(4)));
    assert.equal(t2.deltas!.length, 3);
    assert.deepEqual(expireRetainedTrails(trails, 90 * DAY), { expired: [], deltasPurged: 0 });
    assert.deepEqual(expireRetainedTrails(trails, 100 * DAY), { expired: ['s2'], deltasPurged: 3 });
  });
});
