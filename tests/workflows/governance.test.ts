import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { temporal } from '@temporalio/proto';
import { isHypervisorError } from '../../src/core/errors';
import { verifyTrail } from '../../src/core/audit';
import { merkleRootFromScratch } from '../../src/core/merkle';
import { hypervisor, uniqueId, eventually } from '../helpers/hv';
import { ACTIONS, activeSession, asSre, SRE } from '../helpers/sessions';
import { generateDidKey } from '../../src/core/identity';
import { KeyRing, signRequest } from '../../src/client/keys';
import type { SessionHandle } from '../../src/client';

const EventType = temporal.api.enums.v1.EventType;

/** SPEC §11.9: a drift report counts only when signed by one of the session's config.driftReporters. */
const reporter = generateDidKey();
const REPORTING = { driftReporters: [reporter.did] };
function reportDrift(
  session: SessionHandle,
  req: { agentDid: string; claimedEmbedding?: number[]; observedEmbedding?: number[] },
) {
  return session.reportDrift(
    signRequest(new KeyRing([reporter]), 'reportDrift', session.sessionId, {
      ...req,
      reporterDid: reporter.did,
    }) as never,
  );
}

async function newSession(config = {}) {
  const hv = await hypervisor();
  return hv.createSession({
    sessionId: uniqueId('g'),
    creatorDid: 'did:mesh:admin',
    config: { sreWitnesses: [SRE], ...config },
  });
}

/** A drift verifier ("CMVK") of the test's own: the drift it answers per agent. */
async function startVerifier(drift: Record<string, number>) {
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const msg = JSON.parse(body || '{}');
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ drift: drift[msg.agentDid] ?? 0 }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close() };
}

describe('governed sessions: rings, liability and audit inside the session workflow', function () {
  this.timeout(120_000);

  it('assigns rings from σ with strict thresholds: high, low and the boundaries', async () => {
    const session = await newSession({ minSigmaEff: 0 });
    const ring = async (did: string, sigmaRaw: number) =>
      (await session.join({ agentDid: did, sigmaRaw, actions: [{ actionId: 'draft', reversibility: 'FULL' }] })).ring;
    assert.equal(await ring('did:mesh:high', 0.99), 2, 'σ 0.99 without consensus is ring 2');
    assert.equal(await ring('did:mesh:b095', 0.95), 2);
    assert.equal(await ring('did:mesh:b061', 0.61), 2);
    assert.equal(await ring('did:mesh:b060', 0.6), 3, 'σ exactly 0.60 is not > 0.60');
    assert.equal(await ring('did:mesh:low', 0.2), 3);
  });

  it('forces STRONG consistency when an agent declares a non-reversible action', async () => {
    const session = await newSession();
    const first = await session.join({
      agentDid: 'did:mesh:a',
      sigmaRaw: 0.8,
      actions: [{ actionId: 'draft', reversibility: 'FULL' }],
    });
    assert.equal(first.consistency, 'EVENTUAL');
    const second = await session.join({
      agentDid: 'did:mesh:b',
      sigmaRaw: 0.8,
      actions: [{ actionId: 'wire', reversibility: 'NONE' }],
    });
    assert.equal(second.consistency, 'STRONG');
    assert.equal(second.consistencyChanged, true);
    assert.equal((await session.summary()).consistency, 'STRONG');
  });

  it('raises σ_eff by vouching and holds the exposure limit per session, across sessions', async () => {
    const a = await newSession();
    const b = await newSession();
    for (const s of [a, b]) {
      await s.join({ agentDid: 'did:mesh:voucher', sigmaRaw: 0.9, actions: ACTIONS });
      for (const v of ['did:mesh:v1', 'did:mesh:v2', 'did:mesh:v3'])
        await s.join({ agentDid: v, sigmaRaw: 0.5, actions: ACTIONS });
    }
    assert.equal((await a.participant('did:mesh:v1'))!.ring, 3);
    const bond = await a.vouch({ voucher: 'did:mesh:voucher', vouchee: 'did:mesh:v1', bondPct: 0.4 });
    assert.ok(Math.abs(bond.amount - 0.36) < 1e-12);
    const v1 = (await a.participant('did:mesh:v1'))!;
    assert.ok(Math.abs(v1.sigmaEff - (0.5 + 0.95 * 0.36)) < 1e-12, `σ_eff ${v1.sigmaEff}`);
    assert.equal(v1.ring, 2, 'the bond lifts the vouchee into ring 2');
    // 0.36 + 0.36 = 0.72 = 0.9 × 0.80: exactly at the limit is allowed; one more is not.
    await a.vouch({ voucher: 'did:mesh:voucher', vouchee: 'did:mesh:v2', bondPct: 0.4 });
    await assert.rejects(a.vouch({ voucher: 'did:mesh:voucher', vouchee: 'did:mesh:v3', bondPct: 0.4 }), (e) =>
      isHypervisorError(e, 'EXPOSURE_LIMIT'),
    );
    // Another session has its own limit.
    await b.vouch({ voucher: 'did:mesh:voucher', vouchee: 'did:mesh:v1', bondPct: 0.4 });
    await b.vouch({ voucher: 'did:mesh:voucher', vouchee: 'did:mesh:v2', bondPct: 0.4 });
    const matrix = await a.liability();
    assert.ok(Math.abs(matrix.exposure['did:mesh:voucher']! - 0.72) < 1e-12);
  });

  it('cascades a slash to the voucher, and releases every bond at terminate', async () => {
    const session = await newSession({ minSigmaEff: 0 });
    for (const [did, sigma] of [
      ['did:mesh:gamma', 0.9],
      ['did:mesh:alpha', 0.9],
      ['did:mesh:beta', 0.5],
    ] as const) {
      await session.join({ agentDid: did, sigmaRaw: sigma, actions: ACTIONS });
    }
    await session.vouch({ voucher: 'did:mesh:gamma', vouchee: 'did:mesh:alpha' });
    await session.vouch({ voucher: 'did:mesh:alpha', vouchee: 'did:mesh:beta' });
    const { outcome } = await (
      await asSre(session)
    ).slash({
      agentDid: 'did:mesh:beta',
      reason: 'violated intent',
      witnessDid: SRE,
      omega: 0.95,
    });
    assert.deepEqual(
      outcome.slashes.map((s) => [s.vouchee, s.depth]),
      [
        ['did:mesh:beta', 0],
        ['did:mesh:alpha', 1],
      ],
    );
    const beta = (await session.participant('did:mesh:beta'))!;
    const alpha = (await session.participant('did:mesh:alpha'))!;
    const gamma = (await session.participant('did:mesh:gamma'))!;
    assert.equal(beta.sigmaRaw, 0);
    assert.equal(alpha.sigmaRaw, 0, 'alpha was clipped to the floor, then slashed in the cascade');
    assert.ok(Math.abs(gamma.sigmaRaw - Math.max(0.05, 0.9 * 0.05)) < 1e-12);
    assert.equal(alpha.ring, 3);
    await session.activate();
    const ended = await session.terminate();
    assert.equal((await session.summary()).activeBonds, 0);
    assert.ok(ended.releasedBonds >= 0);
    assert.equal(Object.keys((await session.liability()).exposure).length, 0);
  });

  it('without a drift verifier, caller-supplied embeddings produce no drift (SPEC §9)', async () => {
    const session = await activeSession({ 'did:mesh:alpha': 0.85, 'did:mesh:rogue': 0.9 }, REPORTING);
    const opposite = await reportDrift(session, {
      agentDid: 'did:mesh:rogue',
      claimedEmbedding: [1, 0, 0],
      observedEmbedding: [-1, 0, 0],
    });
    assert.deepEqual([opposite.decision.drift, opposite.decision.action], [0, 'pass']);
    assert.equal((await session.participant('did:mesh:rogue'))!.sigmaRaw, 0.9);
  });

  it('with a verifier: slashes a rogue agent whose behaviour drifted; a MEDIUM drift demotes for the rest of the session', async () => {
    const verifier = await startVerifier({ 'did:mesh:rogue': 0.9, 'did:mesh:wobbly': 0.4 });
    process.env.HV_DRIFT_VERIFIER_URL = verifier.url;
    try {
      const session = await activeSession(
        { 'did:mesh:alpha': 0.85, 'did:mesh:rogue': 0.9, 'did:mesh:wobbly': 0.7, 'did:mesh:friend': 0.9 },
        REPORTING,
      );
      const calm = await reportDrift(session, { agentDid: 'did:mesh:alpha' });
      assert.equal(calm.decision.action, 'pass');
      const rogue = await reportDrift(session, { agentDid: 'did:mesh:rogue' });
      assert.equal(rogue.decision.severity, 'critical');
      assert.equal(rogue.decision.action, 'slash');
      const p = (await session.participant('did:mesh:rogue'))!;
      assert.equal(p.sigmaRaw, 0);
      assert.equal(p.ring, 3);
      // A slashed agent cannot be vouched straight back (SPEC §4).
      await assert.rejects(session.vouch({ voucher: 'did:mesh:friend', vouchee: 'did:mesh:rogue' }), (e) =>
        isHypervisorError(e, 'AGENT_SLASHED'),
      );

      const medium = await reportDrift(session, { agentDid: 'did:mesh:wobbly' });
      assert.equal(medium.decision.action, 'demote');
      assert.equal((await session.participant('did:mesh:wobbly'))!.ring, 3);
      // A later σ change does not lift it above the cap.
      await session.vouch({ voucher: 'did:mesh:friend', vouchee: 'did:mesh:wobbly' });
      const after = (await session.participant('did:mesh:wobbly'))!;
      assert.ok(after.sigmaEff > 0.6, `σ_eff ${after.sigmaEff} would give ring 2`);
      assert.equal(after.ring, 3);
    } finally {
      delete process.env.HV_DRIFT_VERIFIER_URL;
      verifier.close();
    }
  });

  it('onboards an agent from its capability manifest: actions and σ hint', async () => {
    const session = await newSession();
    const joined = await session.join({
      agentDid: 'did:mesh:iatp',
      manifest: {
        agent_id: 'did:mesh:iatp',
        trust_level: 'trusted',
        trust_score: 8,
        actions: [{ actionId: 'publish', reversibility: 'FULL' }],
        scopes: ['mail'],
      },
    });
    assert.equal(joined.sigmaRaw, 0.8);
    assert.equal(joined.ring, 2);
    assert.deepEqual((await session.participant('did:mesh:iatp'))!.actions, ['publish']);
    const check = await session.checkAction({ agentDid: 'did:mesh:iatp', actionId: 'publish' });
    assert.equal(check.allowed, true);
    assert.equal(check.requiredRing, 2);
  });

  it('rejects an unknown session, a duplicate agent and a full session with clear errors; 20 concurrent joins admit exactly 5', async () => {
    const hv = await hypervisor();
    await assert.rejects(
      hv.session('no-such-session').summary(),
      (e) => isHypervisorError(e, 'SESSION_NOT_FOUND') && /no-such-session/.test((e as Error).message),
    );
    const session = await newSession({ maxParticipants: 5 });
    const joins = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => session.join({ agentDid: `did:mesh:crowd-${i}`, sigmaRaw: 0.8 })),
    );
    const admitted = joins.filter((j) => j.status === 'fulfilled');
    const refused = joins.filter((j): j is PromiseRejectedResult => j.status === 'rejected');
    const reasons = [...new Set(refused.map((r) => String(r.reason?.message ?? r.reason)))];
    assert.equal(admitted.length, 5, `admitted ${admitted.length}; refusals: ${reasons.join(' | ')}`);
    assert.equal(refused.length, 15);
    for (const r of refused)
      assert.ok(isHypervisorError(r.reason, 'SESSION_FULL'), `${String(r.reason)}; cause: ${String(r.reason?.cause)}`);
    assert.match(String(refused[0]!.reason.message), /is full \(5 of 5/);
    assert.equal((await session.summary()).participants.length, 5);
    const someone = (admitted[0] as PromiseFulfilledResult<{ did: string }>).value.did;
    await assert.rejects(session.join({ agentDid: someone, sigmaRaw: 0.8 }), (e) =>
      isHypervisorError(e, 'DUPLICATE_AGENT'),
    );
  });

  it('rejects a malformed update before it enters history, naming the field', async () => {
    const session = await newSession();
    await session.join({ agentDid: 'did:mesh:ok', sigmaRaw: 0.8 });
    const before = (await session.handle.fetchHistory()).events!.length;
    const stateBefore = await session.summary();
    await assert.rejects(
      session.join({ agentDid: 'not-a-did', sigmaRaw: 3 } as never),
      (e) =>
        isHypervisorError(e, 'INVALID_INPUT') &&
        /agentDid/.test((e as Error).message) &&
        /sigmaRaw/.test((e as Error).message),
    );
    await assert.rejects(
      session.vouch({ voucher: 'did:mesh:ok' } as never),
      (e) => isHypervisorError(e, 'INVALID_INPUT') && /vouchee/.test((e as Error).message),
    );
    const history = (await session.handle.fetchHistory()).events!;
    assert.equal(history.length, before, 'no event was written for the rejected updates');
    assert.equal(
      history.filter((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED).length,
      1,
    );
    assert.deepEqual(await session.summary(), stateBefore);
  });

  it('captures every turn in the audit chain, which verifies and gives a deterministic root', async () => {
    const session = await newSession();
    await session.join({
      agentDid: 'did:mesh:a',
      sigmaRaw: 0.9,
      actions: [{ actionId: 'draft', reversibility: 'FULL' }],
    });
    await session.join({ agentDid: 'did:mesh:b', sigmaRaw: 0.7 });
    const bond = await session.vouch({ voucher: 'did:mesh:a', vouchee: 'did:mesh:b' });
    await session.activate();
    await session.checkAction({ agentDid: 'did:mesh:b', actionId: 'draft' });
    const { trail, verification } = await session.audit();
    assert.equal(verification.ok, true);
    // One delta per turn: creation, two joins, the vouch, activation, the ring decision.
    assert.deepEqual(
      trail.deltas.map((d) => d.changes[0]!.path),
      ['/', '/participants/did:mesh:a', '/participants/did:mesh:b', `/bonds/${bond.bondId}`, '/state', '/decisions/1'],
    );
    assert.deepEqual(
      trail.deltas.map((d) => d.agentDid),
      ['did:hv:hypervisor', 'did:mesh:a', 'did:mesh:b', 'did:mesh:a', 'did:hv:hypervisor', 'did:mesh:b'],
    );
    assert.deepEqual(
      trail.deltas.map((d) => d.turn),
      trail.deltas.map((_, i) => i + 1),
    );
    const offline = verifyTrail(trail);
    assert.equal(offline.ok, true);
    assert.equal(trail.merkleRoot, merkleRootFromScratch(trail.deltas.map((d) => d.hash)));
    assert.equal((await session.audit()).trail.merkleRoot, trail.merkleRoot, 'the same deltas give the same root');
    const tampered = structuredClone(trail);
    tampered.deltas[2]!.agentDid = 'did:mesh:mallory';
    const broken = verifyTrail(tampered);
    assert.equal(broken.ok, false);
  });

  it('purges the VFS at terminate', async () => {
    const session = await activeSession();
    const change = (await session.handle.executeUpdate('vfsWrite', {
      args: [{ agentDid: 'did:mesh:alpha', path: 'notes/plan.md', content: '# plan' }],
    })) as { operation: string };
    assert.equal(change.operation, 'add');
    const listed = await session.handle.query<{ files: string[] }>('vfsList');
    assert.equal(listed.files.length, 1);
    const ended = await session.terminate();
    assert.equal(ended.purgedFiles, 1);
    assert.deepEqual((await session.handle.query<{ files: string[] }>('vfsList')).files, []);
  });

  it('continues as new when the update budget is spent, keeping its state and its root', async () => {
    const hv = await hypervisor();
    const session = await hv.createSession({
      sessionId: uniqueId('can'),
      creatorDid: 'did:mesh:admin',
      maxUpdatesPerRun: 10,
      config: { maxParticipants: 20 },
    });
    for (let i = 0; i < 14; i++) await session.join({ agentDid: `did:mesh:agent-${i}`, sigmaRaw: 0.7 });
    await session.activate();
    const summary = await eventually(
      () => session.summary(),
      (s) => s.runs >= 2,
      'the session to continue as new',
    );
    assert.equal(summary.participants.length, 14);
    assert.equal(summary.state, 'active');
    const { trail, verification } = await session.audit();
    assert.equal(verification.ok, true);
    assert.equal(trail.deltas.length, 1 + 14 + 1);
    assert.equal(trail.merkleRoot, merkleRootFromScratch(trail.deltas.map((d) => d.hash)));
    const ended = await session.terminate();
    assert.equal(
      ended.commitment.merkleRoot,
      merkleRootFromScratch((await session.audit()).trail.deltas.map((d) => d.hash)),
    );
  });
});
