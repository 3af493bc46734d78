import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { hypervisor, uniqueId } from '../helpers/hv';
import { hv, json, show, tempDir } from './runHv';

const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';

describe('hv session: create, join, activate, vouch, show (child process on a real server)', function () {
  this.timeout(180_000);

  it('runs a session from create to show, in table and --json forms', async () => {
    const id = uniqueId('cli');
    const created = await hv([
      'session',
      'create',
      '--id',
      id,
      '--creator',
      'did:mesh:admin',
      '--identity',
      'none',
      '--max-participants',
      '2',
      '--min-sigma',
      '0.5',
      '--max-duration',
      '900',
    ]);
    assert.equal(created.code, 0, show(created));
    assert.match(created.stdout, new RegExp(`Created session ${id} \\(handshaking\\)`));
    assert.match(created.stdout, /max participants:\s+2/);
    assert.match(created.stdout, /ends itself after:\s+900 s/);

    const joined = await hv([
      'session',
      'join',
      id,
      '--agent',
      alpha,
      '--sigma',
      '0.85',
      '--actions',
      '[{"actionId":"draft","reversibility":"FULL"}]',
      '--json',
    ]);
    assert.equal(joined.code, 0, show(joined));
    const j = json(joined);
    assert.deepEqual({ did: j.did, ring: j.ring, sigmaRaw: j.sigmaRaw }, { did: alpha, ring: 2, sigmaRaw: 0.85 });
    assert.equal(joined.stderr, '', '--json prints nothing else');

    const dir = tempDir();
    const actionsFile = path.join(dir, 'actions.yaml');
    fs.writeFileSync(
      actionsFile,
      '- actionId: draft\n  reversibility: FULL\n- actionId: wire-money\n  reversibility: NONE\n',
    );
    const joinedBeta = await hv(['session', 'join', id, '--agent', beta, '--sigma', '0.9', '--actions', actionsFile]);
    assert.equal(joinedBeta.code, 0, show(joinedBeta));
    assert.match(joinedBeta.stdout, /ring:\s+2 Standard/);
    assert.match(joinedBeta.stdout, /consistency:\s+STRONG \(forced by a non-reversible action\)/);

    const full = await hv(['session', 'join', id, '--agent', 'did:mesh:gamma', '--sigma', '0.8']);
    assert.equal(full.code, 1, show(full));
    assert.match(full.stderr, /error SESSION_FULL: session .* is full \(2 of 2 participants\)/);
    assert.match(full.stderr, /what to do: .*--max-participants/);

    const activated = await hv(['session', 'activate', id]);
    assert.equal(activated.code, 0, show(activated));
    assert.match(activated.stdout, /is active with 2 participant/);

    const vouched = await hv(['session', 'vouch', id, '--voucher', beta, '--vouchee', alpha, '--bond-pct', '0.3']);
    assert.equal(vouched.code, 0, show(vouched));
    assert.match(vouched.stdout, /vouches for did:mesh:alpha/);
    assert.match(vouched.stdout, /amount:\s+0\.270 \(0\.900 × 0\.3\)/);

    const table = await hv(['session', 'show', id]);
    assert.equal(table.code, 0, show(table));
    const summary = await (await hypervisor()).session(id).summary();
    const a = summary.participants.find((p) => p.did === alpha)!;
    assert.ok(a.sigmaEff > 0.85, "the bond raised alpha's σ_eff");
    assert.match(table.stdout, new RegExp(`Session ${id} — active`));
    assert.match(table.stdout, /agent\s+ring\s+σ_raw\s+σ_eff\s+state\s+history/);
    assert.match(
      table.stdout,
      new RegExp(`did:mesh:alpha\\s+2 Standard\\s+0\\.850\\s+${a.sigmaEff.toFixed(3).replace('.', '\\.')}\\s+active`),
    );
    assert.match(table.stdout, /did:mesh:beta\s+2 Standard\s+0\.900\s+0\.900\s+active/);
    assert.match(table.stdout, /Bonds\n.*voucher.*\n.*\n\s+\S+\s+did:mesh:beta\s+did:mesh:alpha\s+0\.270\s+never/);
    assert.match(table.stdout, new RegExp(`deltas:\\s+${summary.deltaCount}\\n`));
    assert.match(table.stdout, new RegExp(`Merkle root:\\s+${summary.merkleRoot}`));
    assert.match(table.stdout, /Sagas\n\s+\(none\)/);

    const asJson = await hv(['session', 'show', id, '--json']);
    assert.equal(asJson.code, 0, show(asJson));
    const s = json(asJson);
    assert.equal(s.state, 'active');
    assert.equal(s.deltaCount, summary.deltaCount);
    assert.equal(s.merkleRoot, summary.merkleRoot);
    assert.deepEqual(s.participants.map((p: { did: string }) => p.did).sort(), [alpha, beta]);
    assert.equal(s.bonds.length, 1);
    assert.equal(s.bonds[0].voucher, beta);
  });

  it('terminates a session and prints its commitment', async () => {
    const id = uniqueId('cli');
    const client = await hypervisor();
    const session = await client.createSession({ sessionId: id, creatorDid: 'did:mesh:admin' });
    await session.join({ agentDid: alpha, sigmaRaw: 0.8 });
    await session.activate();
    const terminated = await hv(['session', 'terminate', id, '--json']);
    assert.equal(terminated.code, 0, show(terminated));
    const t = json(terminated);
    const after = await session.summary();
    assert.equal(after.state, 'archived');
    assert.deepEqual(t.commitment, after.commitment);
    assert.equal(t.commitment.deltaCount, after.deltaCount);

    const again = await hv(['session', 'terminate', id]);
    assert.equal(again.code, 1, show(again));
    assert.match(again.stderr, /error SESSION_CLOSED/);
  });

  it('rejects a join with a helpful message when the flags are wrong, before contacting the server', async () => {
    const bad = await hv(['session', 'join', 'any-session', '--agent', alpha, '--sigma', '1.5'], {
      TEMPORAL_ADDRESS: '127.0.0.1:1',
    });
    assert.equal(bad.code, 2, show(bad));
    assert.match(bad.stderr, /usage error: --sigma must be a number from 0 to 1, got "1\.5"/);
    assert.match(bad.stderr, /hv session join --help/);

    const badActions = await hv(
      ['session', 'join', 'any-session', '--agent', alpha, '--actions', '[{"reversibility":"FULL"}]'],
      { TEMPORAL_ADDRESS: '127.0.0.1:1' },
    );
    assert.equal(badActions.code, 2, show(badActions));
    assert.match(badActions.stderr, /invalid join request: actions\.0\.actionId/);
  });
});
