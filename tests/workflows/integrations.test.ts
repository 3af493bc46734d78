import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { hypervisor, uniqueId, eventually } from '../helpers/hv';
import { asSre, SRE } from '../helpers/sessions';

/** A trust scorer ("Nexus") of the test's own, on loopback: fixed scores, and the reports it receives. */
async function startScorer(scores: Record<string, number>) {
  const reports: { agentDid: string; kind: string; reason: string }[] = [];
  const scored: string[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const msg = JSON.parse(body || '{}');
      if (req.url === '/score') {
        scored.push(msg.agentDid);
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ score: scores[msg.agentDid] ?? 500 }));
      } else {
        reports.push(msg);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    reports,
    scored,
    close: () => server.close(),
  };
}

describe('integrations: the trust scorer as an activity', function () {
  this.timeout(120_000);
  let scorer: Awaited<ReturnType<typeof startScorer>>;

  before(async () => {
    scorer = await startScorer({ 'did:mesh:partner': 930, 'did:mesh:newbie': 420, 'did:mesh:partner-2': 800 });
    // The test worker runs in this process and reads the setting per activity.
    process.env.HV_TRUST_SCORER_URL = scorer.url;
  });
  after(() => {
    delete process.env.HV_TRUST_SCORER_URL;
    scorer.close();
  });

  it('takes σ from the scorer when σ_raw is absent, the lower one when both exist, and reports slashes back', async () => {
    const hv = await hypervisor();
    const session = await hv.createSession({
      sessionId: uniqueId('nexus'),
      creatorDid: 'did:mesh:admin',
      config: { sreWitnesses: [SRE] },
    });
    const partner = await session.join({ agentDid: 'did:mesh:partner' });
    assert.equal(partner.sigmaRaw, 0.93);
    assert.equal(partner.ring, 2);
    const newbie = await session.join({ agentDid: 'did:mesh:newbie' });
    assert.equal(newbie.sigmaRaw, 0.42);
    assert.equal(newbie.ring, 3);
    const claims = await session.join({ agentDid: 'did:mesh:claims', sigmaRaw: 0.9 });
    assert.equal(claims.sigmaRaw, 0.5, 'claimed 0.9, scored 500/1000: the lower one');
    const modest = await session.join({ agentDid: 'did:mesh:partner-2', sigmaRaw: 0.7 });
    assert.equal(modest.sigmaRaw, 0.7, 'claimed 0.7, scored 800/1000: the lower one');
    assert.deepEqual(scorer.scored, ['did:mesh:partner', 'did:mesh:newbie', 'did:mesh:claims', 'did:mesh:partner-2']);

    await (await asSre(session)).slash({ agentDid: 'did:mesh:newbie', reason: 'spam', witnessDid: SRE });
    const reports = await eventually(
      async () => scorer.reports,
      (r) => r.length > 0,
      'the slash report',
    );
    assert.equal(reports[0]!.agentDid, 'did:mesh:newbie');
    assert.equal(reports[0]!.kind, 'slash');
  });
});
