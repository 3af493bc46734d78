import assert from 'node:assert/strict';
import { measureDrift } from '../../activities/integrations';

describe('integrations: drift without a verifier (SPEC §9 [resolved])', () => {
  let saved: string | undefined;
  before(() => {
    saved = process.env.HV_DRIFT_VERIFIER_URL;
    delete process.env.HV_DRIFT_VERIFIER_URL;
  });
  after(() => {
    if (saved !== undefined) process.env.HV_DRIFT_VERIFIER_URL = saved;
  });

  it('is 0 whatever embeddings the caller supplies', async () => {
    const base = { agentDid: 'did:mesh:a', sessionId: 's1' };
    assert.equal(await measureDrift(base), 0);
    assert.equal(await measureDrift({ ...base, claimedEmbedding: [1, 0], observedEmbedding: [-1, 0] }), 0);
    assert.equal(await measureDrift({ ...base, claimedEmbedding: [1, 2, 3], observedEmbedding: [] }), 0);
  });
});
