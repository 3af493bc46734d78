/**
 * `hv` tells the truth (issue 23): a session that fails at its start is
 * reported as failed, not created; `session show` and `agent show` show an
 * agent's controls; a revoked elevation is not "active until".
 */
import assert from 'node:assert/strict';
import { activeSession, SRE_WITNESSES } from '../helpers/sessions';
import { sreKeyFile } from '../helpers/sre';
import { uniqueId } from '../helpers/hv';
import { hv, json, show, tempDir } from './runHv';

const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';
const sre = SRE_WITNESSES[0]!;
/** An SRE signs its requests in every identity mode (SPEC §11.9): `hv --key` with its key. */
const asSre = ['--key', sreKeyFile(tempDir())];

describe('hv tells the truth (child process on a real server)', function () {
  this.timeout(180_000);

  it('session create with an id whose trail the store holds fails AUDIT_CONFLICT with a hint, and says nothing was created', async () => {
    const id = uniqueId('reuse');
    const first = await hv(['session', 'create', '--id', id, '--creator', 'did:mesh:admin', '--identity', 'none']);
    assert.equal(first.code, 0, show(first));
    assert.match(first.stdout, new RegExp(`Created session ${id}`));
    const terminated = await hv(['session', 'terminate', id]);
    assert.equal(terminated.code, 0, show(terminated));
    const again = await hv(['session', 'create', '--id', id, '--creator', 'did:mesh:admin', '--identity', 'none']);
    assert.equal(again.code, 1, show(again));
    assert.doesNotMatch(again.stdout, /Created session/);
    assert.match(again.stderr, /AUDIT_CONFLICT/);
    assert.match(again.stderr, /create the session under a new id/);
  });

  it('session show and agent show name a killed agent, a quarantined one and an elevation; a revoked elevation is not active', async () => {
    const session = await activeSession({ [alpha]: 0.85, [beta]: 0.8, 'did:mesh:gamma': 0.8 });
    const id = session.sessionId;
    assert.equal(
      (
        await hv([
          ...asSre,
          'agent',
          'quarantine',
          id,
          '--agent',
          beta,
          '--sre',
          sre,
          '--reason',
          'odd',
          '--ttl',
          '600',
        ])
      ).code,
      0,
    );
    assert.equal(
      (await hv([...asSre, 'agent', 'kill', id, '--agent', alpha, '--sre', sre, '--reason', 'compromised'])).code,
      0,
    );
    const shown = await hv(['session', 'show', id]);
    assert.equal(shown.code, 0, show(shown));
    assert.match(shown.stdout, /did:mesh:alpha .*killed/);
    assert.match(shown.stdout, /did:mesh:beta .*quarantined until \d{4}-/);
    const agent = await hv(['agent', 'show', id, '--agent', alpha]);
    assert.equal(agent.code, 0, show(agent));
    assert.match(agent.stdout, /did:mesh:alpha in .*: killed/);
    assert.match(agent.stdout, new RegExp(`restricted by:\\s+${sre}: compromised`));
    const asJson = json(await hv(['agent', 'show', id, '--agent', alpha, '--json']));
    assert.equal(asJson.restriction.kind, 'kill');
    const missing = await hv(['agent', 'show', id, '--agent', 'did:mesh:nobody']);
    assert.equal(missing.code, 1, show(missing));
    assert.match(missing.stderr, /AGENT_NOT_FOUND/);

    const gamma = 'did:mesh:gamma';
    const asked = json(
      await hv([
        'agent',
        'elevate',
        id,
        '--agent',
        gamma,
        '--ring',
        '2',
        '--ttl',
        '600',
        '--justification',
        'incident',
        '--json',
      ]),
    );
    const revoked = await hv([...asSre, 'agent', 'revoke', id, '--agent', gamma, '--by', sre]);
    assert.equal(revoked.code, 0, show(revoked));
    assert.match(revoked.stdout, new RegExp(`Elevation ${asked.elevationId} .*: revoked`));
    assert.doesNotMatch(revoked.stdout, /active until/);
  });
});
