import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ApplicationFailure } from '@temporalio/common';
import { INTEGRATION_MAX_RESPONSE_BYTES, measureDrift } from '../../activities/integrations';

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

describe('N3 — SSRF through redirects: integrations do not follow redirects and read a bounded answer', () => {
  let saved: string | undefined;
  let server: http.Server;
  let base = '';
  const seen: string[] = [];
  before(async () => {
    saved = process.env.HV_DRIFT_VERIFIER_URL;
    server = http.createServer((req, res) => {
      seen.push(req.url ?? '');
      req.resume();
      req.on('end', () => {
        if (req.url === '/r/drift') return void res.writeHead(302, { location: `${base}/internal` }).end('{"drift":0}');
        if (req.url === '/big/drift')
          return void res
            .writeHead(200, { 'content-type': 'application/json' })
            .end(JSON.stringify({ drift: 0, pad: 'x'.repeat(INTEGRATION_MAX_RESPONSE_BYTES) }));
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"drift":0.25}');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    if (saved === undefined) delete process.env.HV_DRIFT_VERIFIER_URL;
    else process.env.HV_DRIFT_VERIFIER_URL = saved;
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  const request = { agentDid: 'did:mesh:a', sessionId: 's1' };

  it('a redirect is a non-retryable IntegrationRedirect, and its target gets no request', async () => {
    process.env.HV_DRIFT_VERIFIER_URL = `${base}/r`;
    await assert.rejects(
      measureDrift(request),
      (err: ApplicationFailure) =>
        err.type === 'IntegrationRedirect' &&
        err.nonRetryable &&
        /answered 302 \(Location .*\/internal\)/.test(err.message),
    );
    assert.ok(!seen.includes('/internal'));
  });

  it('an answer past the limit is a non-retryable IntegrationResponseTooLarge', async () => {
    process.env.HV_DRIFT_VERIFIER_URL = `${base}/big`;
    await assert.rejects(
      measureDrift(request),
      (err: ApplicationFailure) => err.type === 'IntegrationResponseTooLarge' && err.nonRetryable,
    );
  });

  it('an ordinary answer is read as before', async () => {
    process.env.HV_DRIFT_VERIFIER_URL = `${base}/ok`;
    assert.equal(await measureDrift(request), 0.25);
  });
});
