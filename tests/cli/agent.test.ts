/** `hv agent …` (SPEC §12) as a child process on a real server: each control, its output, and a refusal named by its code. */
import assert from 'node:assert/strict';
import { activeSession, SRE_WITNESSES } from '../helpers/sessions';
import { sreKeyFile } from '../helpers/sre';
import { hv, json, show, tempDir } from './runHv';

const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';
const gamma = 'did:mesh:gamma';
const sre = SRE_WITNESSES[0]!;
/** An SRE signs its requests in every identity mode (SPEC §11.9): `hv --key` with its key. */
const asSre = ['--key', sreKeyFile(tempDir())];

describe('hv agent: quarantine, release, elevate, revoke, kill (child process on a real server)', function () {
  this.timeout(180_000);

  it('quarantines and releases an agent; a non-SRE is refused by name', async () => {
    const session = await activeSession();
    const id = session.sessionId;
    // An SRE is a did:key that signs (SPEC §11.9): naming an agent that is none is refused; a key that is no SRE's too.
    const refused = await hv(['agent', 'quarantine', id, '--agent', alpha, '--sre', beta, '--reason', 'x']);
    assert.equal(refused.code, 1, show(refused));
    assert.match(refused.stderr, /error NOT_DID_KEY: cannot quarantine: did:mesh:beta is not a did:key/);
    const unsigned = await hv(['agent', 'quarantine', id, '--agent', alpha, '--sre', sre, '--reason', 'x']);
    assert.equal(unsigned.code, 1, show(unsigned));
    assert.match(unsigned.stderr, /error SIGNATURE_REQUIRED/);
    const q = await hv([
      ...asSre,
      'agent',
      'quarantine',
      id,
      '--agent',
      alpha,
      '--sre',
      sre,
      '--reason',
      'odd tool calls',
      '--ttl',
      '600',
    ]);
    assert.equal(q.code, 0, show(q));
    assert.match(q.stdout, /did:mesh:alpha is quarantined in/);
    assert.deepEqual(
      (await session.summary()).controls.restricted.map((r) => r.did),
      [alpha],
    );
    const r = await hv([...asSre, 'agent', 'release', id, '--agent', alpha, '--sre', sre, '--json']);
    assert.equal(r.code, 0, show(r));
    assert.equal(json(r).kind, 'released');
    assert.equal((await session.summary()).controls.restricted.length, 0);
    const bad = await hv([
      ...asSre,
      'agent',
      'quarantine',
      id,
      '--agent',
      alpha,
      '--sre',
      sre,
      '--reason',
      'x',
      '--ttl',
      '0',
    ]);
    assert.equal(bad.code, 2, show(bad));
    assert.match(bad.stderr, /--ttl must be an integer from 1 to 2592000/);
  });

  it('requests, approves and revokes an elevation; kills with a substitute', async () => {
    const session = await activeSession({ [alpha]: 0.85, [beta]: 0.8, [gamma]: 0.8 });
    const id = session.sessionId;
    const asked = await hv([
      'agent',
      'elevate',
      id,
      '--agent',
      alpha,
      '--ring',
      '1',
      '--ttl',
      '600',
      '--justification',
      'incident 42',
      '--json',
    ]);
    assert.equal(asked.code, 0, show(asked));
    const e = json(asked);
    assert.equal(e.state, 'requested');
    for (const approver of [beta, gamma]) {
      const ok = await hv([
        'agent',
        'elevate',
        id,
        '--agent',
        alpha,
        '--approve',
        e.elevationId,
        '--digest',
        e.digest,
        '--approver',
        approver,
      ]);
      assert.equal(ok.code, 0, show(ok));
      if (approver === gamma) assert.match(ok.stdout, /to ring 1: active/);
    }
    const revoked = await hv([...asSre, 'agent', 'revoke', id, '--agent', alpha, '--by', sre]);
    assert.equal(revoked.code, 0, show(revoked));
    assert.match(revoked.stdout, /revoked/);
    const killed = await hv([
      ...asSre,
      'agent',
      'kill',
      id,
      '--agent',
      alpha,
      '--sre',
      sre,
      '--reason',
      'leaked key',
      '--substitute',
      beta,
    ]);
    assert.equal(killed.code, 0, show(killed));
    assert.match(killed.stdout, /did:mesh:alpha is killed in/);
    assert.match(killed.stdout, /until:\s+never \(a kill is final\)/);
    const again = await hv([...asSre, 'agent', 'release', id, '--agent', alpha, '--sre', sre]);
    assert.equal(again.code, 1, show(again));
    assert.match(again.stderr, /error AGENT_KILLED/);
  });
});
