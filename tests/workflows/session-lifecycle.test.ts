import assert from 'node:assert/strict';
import { hypervisor, uniqueId } from '../helpers/hv';
import { merkleRootFromScratch } from '../../src/core/merkle';
import { isHypervisorError } from '../../src/core/errors';

describe('session workflow on a real Temporal server', function () {
  this.timeout(120_000);

  it('runs a full lifecycle and terminates with the Merkle root of its deltas', async () => {
    const hv = await hypervisor();
    const sessionId = uniqueId('life');
    const session = await hv.createSession({ sessionId, creatorDid: 'did:mesh:admin' });
    const alpha = await session.join({ agentDid: 'did:mesh:alpha', sigmaRaw: 0.85 });
    const beta = await session.join({ agentDid: 'did:mesh:beta', sigmaRaw: 0.4 });
    assert.equal(alpha.ring, 2);
    assert.equal(beta.ring, 3);
    const active = await session.activate();
    assert.equal(active.state, 'active');

    const { trail, verification } = await session.audit();
    assert.deepEqual(verification, { ok: true, count: trail.deltas.length });
    const result = await session.terminate();
    const after = await session.audit();
    assert.equal(result.commitment.deltaCount, after.trail.deltas.length);
    assert.equal(result.commitment.merkleRoot, merkleRootFromScratch(after.trail.deltas.map((d) => d.hash)));
    assert.deepEqual(result.commitment.participantDids, ['did:mesh:alpha', 'did:mesh:beta']);
    assert.match(result.commitment.anchorTxId ?? '', /^local:[0-9a-f]{64}$/);
    assert.equal((await session.summary()).state, 'archived');
  });

  it('rejects a duplicate agent and a join to an unknown session with their codes', async () => {
    const hv = await hypervisor();
    const session = await hv.createSession({ sessionId: uniqueId('dup'), creatorDid: 'did:mesh:admin' });
    await session.join({ agentDid: 'did:mesh:alpha', sigmaRaw: 0.8 });
    await assert.rejects(session.join({ agentDid: 'did:mesh:alpha', sigmaRaw: 0.8 }), (e) =>
      isHypervisorError(e, 'DUPLICATE_AGENT'),
    );
    await assert.rejects(hv.session(uniqueId('nobody')).join({ agentDid: 'did:mesh:x', sigmaRaw: 0.8 }), (e) =>
      isHypervisorError(e, 'SESSION_NOT_FOUND'),
    );
  });
});
