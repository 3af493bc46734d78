/**
 * The trail outlives Temporal (SPEC §7 [resolved]): once a session has
 * terminated, `hv audit verify` and `hv audit prove` need nothing but the
 * audit store — shown by deleting the Temporal server's database first — and
 * one flipped byte in one stored delta is found and named by its turn.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { startOwnHypervisor } from '../helpers/ownHypervisor';
import { uniqueId } from '../helpers/hv';
import { freePort } from '../../worker/ports';
import { hv, json, show, tempDir } from './runHv';

describe('hv audit after the Temporal database is gone (own dev server, then deleted)', function () {
  this.timeout(240_000);

  it('verifies and proves a terminated session from the store alone; a flipped byte fails naming its turn', async () => {
    const dir = tempDir();
    const storeDir = path.join(dir, 'store');
    const dbFile = path.join(dir, 'temporal.db');
    const own = await startOwnHypervisor({ taskQueue: uniqueId('hv-gone'), dbFile, dataDir: storeDir });
    const sessionId = uniqueId('gone');
    let committed: { merkleRoot: string | null; deltaCount: number };
    try {
      const session = await own.hv.createSession({ sessionId, creatorDid: 'did:mesh:admin' });
      await session.join({ agentDid: 'did:mesh:alpha', sigmaRaw: 0.85 });
      await session.join({ agentDid: 'did:mesh:beta', sigmaRaw: 0.8 });
      await session.activate();
      await session.vouch({ voucher: 'did:mesh:alpha', vouchee: 'did:mesh:beta' });
      for (let i = 0; i < 3; i++)
        await session.checkAction({ agentDid: 'did:mesh:beta', actionId: 'read-data' }).catch(() => undefined);
      const ended = await session.terminate();
      committed = ended.commitment;
      assert.ok(committed.deltaCount >= 6);
    } finally {
      await own.stop();
    }
    for (const f of fs.readdirSync(dir).filter((f) => f.startsWith('temporal.db'))) fs.rmSync(path.join(dir, f));
    // Nothing answers at this address: any call to Temporal would fail (exit 3).
    const env = { HV_DATA_DIR: storeDir, TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}`, HV_AUDIT_DATABASE_URL: '' };

    const verified = await hv(['audit', 'verify', sessionId, '--json'], env);
    assert.equal(verified.code, 0, show(verified));
    const r = json(verified);
    assert.deepEqual(
      { ok: r.ok, source: r.source, deltaCount: r.deltaCount, merkleRoot: r.merkleRoot, matches: r.commitment.matches },
      { ok: true, source: 'store', deltaCount: committed.deltaCount, merkleRoot: committed.merkleRoot, matches: true },
    );

    const proved = await hv(['audit', 'prove', sessionId, '3', '--json'], env);
    assert.equal(proved.code, 0, show(proved));
    const proof = json(proved);
    assert.equal(proof.turn, 3);
    assert.equal(proof.merkleRoot, committed.merkleRoot);
    const proofFile = path.join(dir, 'proof.json');
    fs.writeFileSync(proofFile, proved.stdout);
    const checked = await hv(['audit', 'check-proof', proofFile], env);
    assert.equal(checked.code, 0, show(checked));
    assert.match(checked.stdout, /^OK {2}turn 3 is under the committed root/);
    // The proof is of turn 3's delta: another delta with the same path does not pass.
    fs.writeFileSync(proofFile, JSON.stringify({ ...proof, delta: { ...proof.delta, agentDid: 'did:mesh:mallory' } }));
    assert.equal((await hv(['audit', 'check-proof', proofFile], env)).code, 4);

    // One byte of turn 4's stored text, flipped in the store's file.
    const db = new Database(path.join(storeDir, 'audit.sqlite'));
    const row = db.prepare('SELECT json FROM audit_deltas WHERE session_id = ? AND turn = 4').get(sessionId) as {
      json: string;
    };
    const at = row.json.indexOf('"agentDid":"') + '"agentDid":"'.length + 4;
    const flipped = row.json.slice(0, at) + String.fromCharCode(row.json.charCodeAt(at) ^ 1) + row.json.slice(at + 1);
    db.prepare('UPDATE audit_deltas SET json = ? WHERE session_id = ? AND turn = 4').run(flipped, sessionId);
    db.close();
    const broken = await hv(['audit', 'verify', sessionId], env);
    assert.equal(broken.code, 4, show(broken));
    assert.match(broken.stdout, /first broken turn:\s+turn 4 /);
    assert.match(broken.stdout, /reason:\s+turn 4 hash mismatch/);
    const noProof = await hv(['audit', 'prove', sessionId, '2'], env);
    assert.equal(noProof.code, 4, show(noProof));
    assert.match(noProof.stderr, /does not verify at turn 4/);
  });
});
