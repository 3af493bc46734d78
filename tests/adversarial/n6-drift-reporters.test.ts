/**
 * N6 (issue 24): `reportDrift` was unsigned, even in did:key sessions: an
 * outsider slashed an agent to σ 0 through the session's drift verifier.
 * SPEC §11.9: only the drift verifier's outcome may slash, and a report counts
 * only when signed by `reporterDid`, one of the session's config.driftReporters
 * — in every identity mode (the registry marks reportDrift `alwaysSigned`). A
 * session that names no reporter takes no report. A refused report records
 * nothing and calls no verifier.
 */
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateDidKey } from '../../src/core/identity';
import { KeyRing, signRequest } from '../../src/client/keys';
import {
  ATTACKER,
  expectNoTrace,
  expectSoundAudit,
  mark,
  openSession,
  refused,
  scheduledActivities,
  workflowTaskFailures,
} from './raw';

const victim = 'did:mesh:victim';

/** A drift verifier that finds the victim critically drifted: every report it is asked for is a slash. */
async function verifier(): Promise<{ url: string; asked: string[]; close: () => void }> {
  const asked: string[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const msg = JSON.parse(body || '{}');
      asked.push(msg.agentDid);
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ drift: msg.agentDid === victim ? 0.95 : 0 }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, asked, close: () => server.close() };
}

describe('N6 — only a configured, signing drift reporter may report drift', function () {
  this.timeout(120_000);
  const touched: string[] = [];
  let v: Awaited<ReturnType<typeof verifier>>;
  const before = process.env.HV_DRIFT_VERIFIER_URL;
  beforeEach(async () => {
    v = await verifier();
    process.env.HV_DRIFT_VERIFIER_URL = v.url;
  });
  afterEach(() => {
    v.close();
    if (before === undefined) delete process.env.HV_DRIFT_VERIFIER_URL;
    else process.env.HV_DRIFT_VERIFIER_URL = before;
  });
  after(async () => assert.deepEqual(await workflowTaskFailures(touched), [], 'no workflow task failed'));

  const drifts = async (workflowId: string) =>
    (await scheduledActivities(workflowId)).filter((a) => a.type === 'measureDrift').length;

  it("N6: an outsider's report — unsigned, self-signed, or naming a reporter it cannot sign for — is refused, slashes nobody and asks no verifier", async () => {
    const reporter = generateDidKey();
    const outsider = generateDidKey();
    const session = await openSession({ [victim]: 0.9, 'did:mesh:beta': 0.8 }, { driftReporters: [reporter.did] });
    touched.push(session.workflowId);
    const m = await mark(session);
    // What the attack of the finding sent: a bare report, as any client of the namespace can.
    await refused(session.update('reportDrift', { agentDid: victim }), 'INVALID_INPUT', 'reporterDid');
    // Naming the reporter is not being it: unsigned (identity "none" or not, a report is signed).
    await refused(
      session.update('reportDrift', { agentDid: victim, reporterDid: reporter.did }),
      'SIGNATURE_REQUIRED',
      reporter.did,
    );
    // Signed by the outsider's own key, for the reporter.
    const forged = signRequest(new KeyRing([outsider]), 'reportDrift', session.id, {
      agentDid: victim,
      reporterDid: outsider.did,
    });
    await refused(session.update('reportDrift', { ...forged, reporterDid: reporter.did }), 'WRONG_SIGNER');
    // Signed by itself, as itself: not a configured reporter.
    await refused(session.update('reportDrift', forged), 'NOT_DRIFT_REPORTER', 'config.driftReporters');
    // A non-did:key reporter can never sign.
    await refused(session.update('reportDrift', { agentDid: victim, reporterDid: ATTACKER }), 'NOT_DID_KEY');
    await expectNoTrace(m);
    assert.equal((await session.participant(victim)).sigmaRaw, 0.9, 'the victim keeps its σ');
    assert.equal(await drifts(session.workflowId), 0, 'no verifier was asked');
    assert.deepEqual(v.asked, []);

    // The configured reporter's signed report is the verifier's word: it slashes, and the trail keeps who asked.
    const signed = signRequest(new KeyRing([reporter]), 'reportDrift', session.id, {
      agentDid: victim,
      reporterDid: reporter.did,
    });
    const outcome = await session.update('reportDrift', signed);
    assert.equal(outcome.decision.action, 'slash');
    assert.equal((await session.participant(victim)).sigmaRaw, 0);
    const trail = await expectSoundAudit(session);
    const report = trail.deltas.find((d) => d.changes.some((c) => c.path.startsWith(`/drift/${victim}/`)));
    assert.equal(report?.agentDid, reporter.did, "the drift check is recorded as the reporter's request");
    assert.deepEqual(
      report?.signatures?.map((s) => s.signer),
      [reporter.did],
    );
    // The same signed report again is a replay.
    await refused(session.update('reportDrift', signed), 'NONCE_REUSED');
  });

  it('N6: a session that names no drift reporter takes no drift report, signed or not', async () => {
    const someone = generateDidKey();
    const session = await openSession({ [victim]: 0.9 });
    touched.push(session.workflowId);
    const m = await mark(session);
    const signed = signRequest(new KeyRing([someone]), 'reportDrift', session.id, {
      agentDid: victim,
      reporterDid: someone.did,
    });
    await refused(session.update('reportDrift', signed), 'NOT_DRIFT_REPORTER', 'names no drift reporter');
    await expectNoTrace(m);
    assert.equal((await session.participant(victim)).sigmaRaw, 0.9);
    assert.deepEqual(v.asked, []);
  });
});
