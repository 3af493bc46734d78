import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { deltaHash, verifyTrail, type AuditTrail } from '../../src/core/audit';
import { activeSession } from '../helpers/sessions';
import { hv, json, show, tempDir } from './runHv';

const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';

describe('hv audit: verify offline from the audit store, export, prove (child process on a real server)', function () {
  this.timeout(180_000);

  it('verifies a live session, then the same session terminated against its commitment', async () => {
    const session = await activeSession();
    await session.vouch({ voucher: beta, vouchee: alpha });
    const live = await session.summary();
    assert.ok(live.deltaCount >= 3);

    const ok = await hv(['audit', 'verify', session.sessionId]);
    assert.equal(ok.code, 0, show(ok));
    assert.match(ok.stdout, new RegExp(`^OK  audit trail of session ${session.sessionId} \\(audit store\\)`));
    assert.match(ok.stdout, new RegExp(`deltas:\\s+${live.deltaCount}\\n`));
    assert.match(ok.stdout, new RegExp(`Merkle root:\\s+${live.merkleRoot}`));
    assert.match(ok.stdout, /commitment:\s+none yet \(the session is open/);

    const terminated = await hv(['session', 'terminate', session.sessionId]);
    assert.equal(terminated.code, 0, show(terminated));
    const { commitment } = await session.summary();
    assert.ok(commitment);
    assert.match(terminated.stdout, new RegExp(`Merkle root:\\s+${commitment.merkleRoot}`));

    const after = await hv(['audit', 'verify', session.sessionId, '--json']);
    assert.equal(after.code, 0, show(after));
    const r = json(after);
    assert.equal(r.ok, true);
    assert.equal(r.source, 'store');
    assert.equal(r.merkleRoot, commitment.merkleRoot);
    assert.equal(r.deltaCount, commitment.deltaCount);
    assert.deepEqual(
      { checked: r.commitment.checked, matches: r.commitment.matches },
      { checked: true, matches: true },
    );
  });

  it('finds the first broken link of an exported, tampered trail (exit 4), and passes the untouched export', async () => {
    const session = await activeSession();
    await session.vouch({ voucher: beta, vouchee: alpha });
    const exported = await hv(['audit', 'export', session.sessionId]);
    assert.equal(exported.code, 0, show(exported));
    const trail = JSON.parse(exported.stdout) as AuditTrail;
    assert.equal(trail.sessionId, session.sessionId);
    assert.deepEqual(verifyTrail(trail), { ok: true, count: trail.deltas.length, merkleRoot: trail.merkleRoot });

    const dir = tempDir();
    const clean = path.join(dir, 'trail.json');
    fs.writeFileSync(clean, exported.stdout);
    const cleanRun = await hv(['audit', 'verify', session.sessionId, '--file', clean, '--offline']);
    assert.equal(cleanRun.code, 0, show(cleanRun));
    assert.match(cleanRun.stdout, /^OK {2}audit trail of session .* \(file .*trail\.json\)/);
    assert.match(cleanRun.stdout, /commitment:\s+not checked \(--offline\)/);

    // Rewrite who made turn 2, leaving its recorded hash alone.
    const tampered = structuredClone(trail);
    tampered.deltas[1]!.agentDid = 'did:mesh:mallory';
    const bad = path.join(dir, 'tampered.json');
    fs.writeFileSync(bad, JSON.stringify(tampered));
    const run = await hv(['audit', 'verify', session.sessionId, '--file', bad]);
    assert.equal(run.code, 4, show(run));
    assert.match(run.stdout, /^FAILED {2}audit trail of session/);
    assert.match(run.stdout, new RegExp(`first broken turn:\\s+turn 2 \\(delta ${trail.deltas[1]!.deltaId}\\)`));
    assert.match(run.stdout, /reason:\s+turn 2 hash mismatch/);

    const asJson = await hv(['audit', 'verify', session.sessionId, '--file', bad, '--json', '--offline']);
    assert.equal(asJson.code, 4, show(asJson));
    const r = json(asJson);
    assert.deepEqual(
      { ok: r.ok, turn: r.turn, deltaId: r.deltaId },
      { ok: false, turn: 2, deltaId: trail.deltas[1]!.deltaId },
    );

    // Re-hashing the edited delta does not help: its successor's parent link breaks.
    const rehashed = structuredClone(tampered);
    rehashed.deltas[1]!.hash = deltaHash(rehashed.deltas[1]!);
    const forged = path.join(dir, 'rehashed.json');
    fs.writeFileSync(forged, JSON.stringify(rehashed));
    const forgedRun = await hv(['audit', 'verify', session.sessionId, '--file', forged, '--offline', '--json']);
    assert.equal(forgedRun.code, 4, show(forgedRun));
    assert.deepEqual(json(forgedRun).turn, 3);
    assert.match(json(forgedRun).reason, /turn 3 parent hash .* is not turn 2's hash/);

    // A claimed root that the deltas do not give is no single delta's fault.
    const wrongRoot = structuredClone(trail);
    wrongRoot.merkleRoot = 'f'.repeat(64);
    const rootFile = path.join(dir, 'wrong-root.json');
    fs.writeFileSync(rootFile, JSON.stringify(wrongRoot));
    const rootRun = await hv(['audit', 'verify', session.sessionId, '--file', rootFile, '--offline']);
    assert.equal(rootRun.code, 4, show(rootRun));
    assert.match(rootRun.stdout, /first broken turn:\s+the trail as a whole\n\s+reason:\s+Merkle root mismatch/);

    const wrongSession = await hv(['audit', 'verify', 'another-session', '--file', clean, '--offline']);
    assert.equal(wrongSession.code, 4, show(wrongSession));
    assert.match(wrongSession.stdout, /reason:\s+the trail is of session .*, not another-session/);

    const notJson = path.join(dir, 'not.json');
    fs.writeFileSync(notJson, 'garbage');
    const notJsonRun = await hv(['audit', 'verify', session.sessionId, '--file', notJson, '--offline']);
    assert.equal(notJsonRun.code, 2, show(notJsonRun));
    assert.match(notJsonRun.stderr, /trail file .* is not JSON/);
  });
});
