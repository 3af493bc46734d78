/**
 * `hv keys new`, `hv --key FILE` and `hv audit verify` on a did:key session
 * (issue 12), as child processes against the test server: every request the
 * CLI sends is signed; the exported trail verifies with every signature
 * checked, and one altered signature fails naming its turn.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { uniqueId } from '../helpers/hv';
import { hv, json, show, tempDir } from './runHv';

const TEST_STEP = { executeApi: 'handler:test.step', undoApi: 'handler:test.step' };
const ACTIONS = JSON.stringify([
  { actionId: 'draft', reversibility: 'FULL', ...TEST_STEP },
  { actionId: 'wire-money', reversibility: 'NONE', ...TEST_STEP },
]);

describe('hv keys and signed requests (child process on a real server)', function () {
  this.timeout(180_000);
  const dir = tempDir();
  const keyFile = (name: string) => path.join(dir, `${name}.key`);
  const dids: Record<string, string> = {};

  before(async () => {
    for (const name of ['admin', 'sre', 'alpha', 'beta', 'gamma']) {
      const run = await hv(['keys', 'new', keyFile(name)]);
      assert.equal(run.code, 0, show(run));
      dids[name] = run.stdout.trim();
    }
  });

  it('keys new writes an owner-only key file, prints its DID, and never overwrites one', async () => {
    assert.match(dids.alpha!, /^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]+$/);
    assert.equal(fs.statSync(keyFile('alpha')).mode & 0o777, 0o600);
    const again = await hv(['keys', 'new', keyFile('alpha')]);
    assert.equal(again.code, 2, show(again));
    assert.match(again.stderr, /exists/);
    const shown = await hv(['keys', 'show', keyFile('alpha')]);
    assert.equal(shown.stdout.trim(), dids.alpha);
    const bad = await hv(['--key', path.join(dir, 'missing.key'), 'session', 'show', 's1']);
    assert.equal(bad.code, 2, show(bad));
  });

  it('a did:key session takes only what is signed; the exported trail verifies every signature, and an altered one fails naming its turn', async () => {
    const id = uniqueId('cli-didkey');
    const as = (name: string) => ['--key', keyFile(name)];
    const create = await hv([
      ...as('admin'),
      'session',
      'create',
      '--id',
      id,
      '--creator',
      dids.admin!,
      '--identity',
      'did:key',
      '--sre-witness',
      dids.sre!,
    ]);
    assert.equal(create.code, 0, show(create));

    const unsigned = await hv(['session', 'join', id, '--agent', dids.alpha!, '--sigma', '0.9', '--actions', ACTIONS]);
    assert.equal(unsigned.code, 1, show(unsigned));
    assert.match(unsigned.stderr, /SIGNATURE_REQUIRED/);
    const wrongKey = await hv([
      ...as('beta'),
      'session',
      'join',
      id,
      '--agent',
      dids.alpha!,
      '--sigma',
      '0.9',
      '--actions',
      ACTIONS,
    ]);
    assert.equal(wrongKey.code, 1, show(wrongKey));
    assert.match(
      wrongKey.stderr,
      /SIGNATURE_REQUIRED/,
      "beta's key cannot sign for alpha: nothing is signed, and the session says who must sign",
    );

    for (const [name, sigma] of [
      ['alpha', '0.97'],
      ['beta', '0.8'],
      ['gamma', '0.8'],
    ] as const) {
      const run = await hv([
        ...as(name),
        'session',
        'join',
        id,
        '--agent',
        dids[name]!,
        '--sigma',
        sigma,
        '--actions',
        ACTIONS,
      ]);
      assert.equal(run.code, 0, show(run));
    }
    const activate = await hv([...as('admin'), 'session', 'activate', id]);
    assert.equal(activate.code, 0, show(activate));

    const sagaFile = path.join(dir, 'saga.json');
    fs.writeFileSync(
      sagaFile,
      JSON.stringify({
        sagaId: 'wire',
        steps: [{ actionId: 'wire-money', agentDid: dids.alpha, input: { amount: 5 }, approvalDeadlineSeconds: 60 }],
      }),
    );
    const start = await hv([...as('alpha'), 'saga', 'start', id, sagaFile]);
    assert.equal(start.code, 0, show(start));
    for (const name of ['beta', 'gamma']) {
      const run = await hv([...as(name), 'saga', 'approve', id, 'wire', 'step-1', '--as', dids[name]!]);
      assert.equal(run.code, 0, show(run));
    }
    const waited = await hv(['saga', 'start', id, sagaFile, '--id', 'unsigned']);
    assert.equal(waited.code, 1, show(waited));
    const done = await hv(['--json', 'saga', 'show', id, 'wire']);
    assert.equal(json(done).saga.state === 'completed' || json(done).saga.state === 'running', true, show(done));
    // Several keys at once: the CLI signs as whichever DID each request speaks for; the first key signs terminate.
    const terminate = await hv([...as('sre'), ...as('alpha'), 'session', 'terminate', id]);
    assert.equal(terminate.code, 0, show(terminate));

    const exported = await hv(['audit', 'export', id]);
    assert.equal(exported.code, 0, show(exported));
    const trailFile = path.join(dir, 'trail.json');
    fs.writeFileSync(trailFile, exported.stdout);
    const ok = await hv(['audit', 'verify', id, '--file', trailFile, '--offline']);
    assert.equal(ok.code, 0, show(ok));
    const trail = JSON.parse(exported.stdout) as {
      deltas: { turn: number; agentDid: string; signatures?: { signature: string }[] }[];
    };
    const signed = trail.deltas.filter((d) => d.signatures).reduce((n, d) => n + d.signatures!.length, 0);
    assert.ok(signed >= 7, `joins, activate, the saga, approvals and termination are signed (${signed})`);
    assert.match(ok.stdout, new RegExp(`signatures:\\s+${signed} checked \\(a did:key session`));
    const okJson = json(await hv(['--json', 'audit', 'verify', id]));
    assert.deepEqual([okJson.ok, okJson.signatures], [true, { checked: signed, didKeySession: true }]);

    const victim = trail.deltas.find((d) => d.agentDid === dids.beta && d.signatures)!;
    const sig = victim.signatures![0]!;
    sig.signature = (sig.signature[0] === 'a' ? 'b' : 'a') + sig.signature.slice(1);
    const altered = path.join(dir, 'altered.json');
    fs.writeFileSync(altered, JSON.stringify(trail));
    const failed = await hv(['audit', 'verify', id, '--file', altered, '--offline']);
    assert.equal(failed.code, 4, show(failed));
    assert.match(failed.stdout, new RegExp(`first broken turn:\\s+turn ${victim.turn} `));
    assert.match(failed.stdout, new RegExp(`the signature of ${dids.beta} does not verify`));
  });
});
