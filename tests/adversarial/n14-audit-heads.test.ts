/**
 * Issue 24, N14: `hv audit verify --hypervisor DID` holds a stored trail to the
 * tree heads the worker signed with its own key. Store and commitment live in
 * one database, so each tamper below rewrites them together — every hash,
 * link, the commitment's root and count — and passes plain `hv audit verify`;
 * with --hypervisor each fails, naming the turn.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { deltaHash, type Delta } from '../../src/core/audit';
import { HypervisorClient } from '../../src/client';
import { canonicalJson } from '../../src/core/hash';
import { KeyRing, writeNewKeyFile } from '../../src/client/keys';
import { merkleRootFromScratch } from '../../src/core/merkle';
import { testEnv } from '../helpers/env';
import { uniqueId } from '../helpers/hv';
import { hv, json, show, tempDir } from '../cli/runHv';

const TEST_STEP = { executeApi: 'handler:test.step', undoApi: 'handler:test.step' };

/** A terminated did:key session whose stored trail has signed deltas. */
async function signedSession(): Promise<{ sessionId: string; deltaCount: number }> {
  const env = await testEnv();
  const dir = tempDir();
  const keys = Object.fromEntries(
    ['admin', 'alpha', 'beta'].map((n) => [n, writeNewKeyFile(path.join(dir, `${n}.key`))]),
  );
  const sessionId = uniqueId('heads');
  const client = new HypervisorClient(env.client, env.taskQueue, env.store, new KeyRing(Object.values(keys)));
  const session = await client.createSession({
    sessionId,
    creatorDid: keys.admin!.did,
    config: { identity: 'did:key' },
  });
  for (const [name, sigma] of [
    ['alpha', 0.9],
    ['beta', 0.8],
  ] as const) {
    await session.join({
      agentDid: keys[name]!.did,
      sigmaRaw: sigma,
      actions: [{ actionId: `draft-${name}`, reversibility: 'FULL', ...TEST_STEP }],
    });
  }
  await session.activate({ as: keys.admin!.did });
  await session.vouch({ voucher: keys.alpha!.did, vouchee: keys.beta!.did });
  const ended = await session.terminate({ as: keys.admin!.did });
  return { sessionId, deltaCount: ended.commitment.deltaCount };
}

/** The store's file, rewritten as an attacker with the database would: every hash, link and the commitment. */
function rewriteStore(dataDir: string, sessionId: string, edit: (deltas: Delta[]) => Delta[]): void {
  const db = new Database(path.join(dataDir, 'audit.sqlite'));
  try {
    const rows = db
      .prepare('SELECT turn, json FROM audit_deltas WHERE session_id = ? ORDER BY turn')
      .all(sessionId) as { turn: number; json: string }[];
    const deltas = edit(rows.map((r) => JSON.parse(r.json) as Delta));
    let parent: string | null = null;
    for (const [i, d] of deltas.entries()) {
      d.turn = i + 1;
      d.parentHash = parent;
      d.hash = deltaHash(d);
      parent = d.hash;
    }
    db.transaction(() => {
      db.prepare('DELETE FROM audit_deltas WHERE session_id = ?').run(sessionId);
      for (const d of deltas)
        db.prepare('INSERT INTO audit_deltas (session_id, turn, hash, json) VALUES (?, ?, ?, ?)').run(
          sessionId,
          d.turn,
          d.hash,
          JSON.stringify(d),
        );
      const record = db.prepare('SELECT commitment FROM audit_sessions WHERE session_id = ?').get(sessionId) as {
        commitment: string;
      };
      const commitment = {
        ...JSON.parse(record.commitment),
        deltaCount: deltas.length,
        merkleRoot: merkleRootFromScratch(deltas.map((d) => d.hash)),
      };
      db.prepare('UPDATE audit_sessions SET commitment = ? WHERE session_id = ?').run(
        canonicalJson(commitment),
        sessionId,
      );
    })();
  } finally {
    db.close();
  }
}

describe("hv audit verify --hypervisor: the worker's signed tree heads (issue 24, N14)", function () {
  this.timeout(240_000);

  it('an untouched trail verifies against the heads; the wrong DID or a malformed one does not', async () => {
    const env = await testEnv();
    const { sessionId, deltaCount } = await signedSession();
    const ok = await hv(['audit', 'verify', sessionId, '--hypervisor', env.hypervisorDid, '--json']);
    assert.equal(ok.code, 0, show(ok));
    assert.deepEqual(json(ok).hypervisor, { did: env.hypervisorDid, checked: deltaCount + 1, final: true });
    const text = await hv(['audit', 'verify', sessionId, '--hypervisor', env.hypervisorDid]);
    assert.match(
      text.stdout,
      new RegExp(`tree heads:\\s+${deltaCount + 1} signed by ${env.hypervisorDid}, the final one over the commitment`),
    );
    const stranger = writeNewKeyFile(path.join(tempDir(), 'x.key')).did;
    const wrong = await hv(['audit', 'verify', sessionId, '--hypervisor', stranger]);
    assert.equal(wrong.code, 4, show(wrong));
    assert.match(
      wrong.stdout,
      /first broken turn:\s+turn 1 .*\n\s+reason:\s+turn 1: its tree head at size 1 is not signed by the hypervisor/,
    );
    const malformed = await hv(['audit', 'verify', sessionId, '--hypervisor', 'did:mesh:hv']);
    assert.equal(malformed.code, 2, show(malformed));
  });

  it('a change added to a signed delta, the chain and commitment rewritten: plain verify passes, --hypervisor fails naming the turn', async () => {
    const env = await testEnv();
    const { sessionId } = await signedSession();
    let turn = 0;
    rewriteStore(env.dataDir, sessionId, (deltas) => {
      const signed = deltas.find((d) => d.turn > 1 && (d.signatures?.length ?? 0) > 0)!;
      turn = signed.turn;
      signed.changes.push({
        path: '/participants/extra',
        operation: 'add',
        contentHash: 'f'.repeat(64),
        agentDid: signed.agentDid,
      });
      return deltas;
    });
    const plain = await hv(['audit', 'verify', sessionId]);
    assert.equal(plain.code, 0, `the rewrite is internally consistent: ${show(plain)}`);
    const run = await hv(['audit', 'verify', sessionId, '--hypervisor', env.hypervisorDid, '--json']);
    assert.equal(run.code, 4, show(run));
    const r = json(run);
    assert.equal(r.turn, turn);
    assert.match(r.reason, new RegExp(`^turn ${turn}: the hypervisor signed chain hash`));
  });

  it('the /identity marker and every signature stripped, chain and commitment rewritten: --hypervisor fails at turn 1', async () => {
    const env = await testEnv();
    const { sessionId } = await signedSession();
    rewriteStore(env.dataDir, sessionId, (deltas) =>
      deltas.map((d) => {
        const { signatures: _, ...rest } = d;
        return { ...rest, changes: d.changes.filter((c) => c.path !== '/identity') } as Delta;
      }),
    );
    const plain = await hv(['audit', 'verify', sessionId, '--json']);
    assert.equal(plain.code, 0, show(plain));
    assert.equal(json(plain).signatures.didKeySession, false);
    const run = await hv(['audit', 'verify', sessionId, '--hypervisor', env.hypervisorDid]);
    assert.equal(run.code, 4, show(run));
    assert.match(run.stdout, /first broken turn:\s+turn 1 /);
    assert.match(
      run.stdout,
      /reason:\s+turn 1: the hypervisor signed the trail as a did:key session; turn 1 has no \/identity marker/,
    );
  });

  it('the chain and commitment rewritten together — a turn dropped from the middle — fail naming the turn', async () => {
    const env = await testEnv();
    const { sessionId, deltaCount } = await signedSession();
    rewriteStore(env.dataDir, sessionId, (deltas) => deltas.filter((d) => d.turn !== 3));
    const plain = await hv(['audit', 'verify', sessionId, '--json']);
    assert.equal(plain.code, 0, show(plain));
    assert.equal(json(plain).deltaCount, deltaCount - 1);
    const run = await hv(['audit', 'verify', sessionId, '--hypervisor', env.hypervisorDid, '--json']);
    assert.equal(run.code, 4, show(run));
    assert.equal(json(run).turn, 3);
    assert.match(json(run).reason, /^turn 3: the hypervisor signed chain hash/);
    // Dropping the heads too leaves nothing the hypervisor signed over the commitment.
    const db = new Database(path.join(env.dataDir, 'audit.sqlite'));
    db.prepare('DELETE FROM audit_tree_heads WHERE session_id = ?').run(sessionId);
    db.close();
    const bare = await hv(['audit', 'verify', sessionId, '--hypervisor', env.hypervisorDid, '--json']);
    assert.equal(bare.code, 4, show(bare));
    assert.equal(json(bare).turn, 1);
    assert.match(json(bare).reason, /turn 1: no tree head signed by the hypervisor/);
    assert.ok(
      fs.existsSync(path.join(env.dataDir, 'hypervisor.key')),
      'the key is a file of the worker, not a row of the store',
    );
  });
});
