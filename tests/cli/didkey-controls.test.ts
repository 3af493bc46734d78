/**
 * `hv --key` on a did:key session's controls (issue 19, N17): quarantine,
 * release, kill and an elevation's approval are signed by the SRE or the
 * approver the request names — the registry's signer rule — and accepted;
 * with only the agent's key they are refused.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { uniqueId } from '../helpers/hv';
import { hv, json, show, tempDir } from './runHv';

const TEST_STEP = { executeApi: 'handler:test.step', undoApi: 'handler:test.step' };
const ACTIONS = JSON.stringify([
  { actionId: 'draft', reversibility: 'FULL', ...TEST_STEP },
  { actionId: 'reconfigure', admin: true, reversibility: 'FULL', ...TEST_STEP },
]);

describe('hv --key: controls in a did:key session (child process on a real server)', function () {
  this.timeout(180_000);
  const dir = tempDir();
  const keyFile = (name: string) => path.join(dir, `${name}.key`);
  const dids: Record<string, string> = {};
  const as = (...names: string[]) => names.flatMap((n) => ['--key', keyFile(n)]);
  const ok = async (args: string[]) => {
    const run = await hv(args);
    assert.equal(run.code, 0, show(run));
    return run;
  };
  const refused = async (args: string[]) => {
    const run = await hv(args);
    assert.equal(run.code, 1, show(run));
    assert.match(run.stderr, /SIGNATURE_REQUIRED/, show(run));
  };

  it("quarantine, release, kill and approve elevation: refused with the agent's key, accepted with the SRE's or the approver's", async () => {
    for (const name of ['admin', 'sre', 'alpha', 'beta', 'gamma'])
      dids[name] = (await ok(['keys', 'new', keyFile(name)])).stdout.trim();
    const id = uniqueId('cli-didkey-controls');
    await ok([
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
    for (const [name, sigma] of [
      ['alpha', '0.97'],
      ['beta', '0.8'],
      ['gamma', '0.8'],
    ] as const) {
      await ok([...as(name), 'session', 'join', id, '--agent', dids[name]!, '--sigma', sigma, '--actions', ACTIONS]);
    }
    await ok([...as('admin'), 'session', 'activate', id]);

    const quarantine = [
      'agent',
      'quarantine',
      id,
      '--agent',
      dids.alpha!,
      '--sre',
      dids.sre!,
      '--reason',
      'odd tool calls',
      '--ttl',
      '600',
    ];
    await refused([...as('alpha'), ...quarantine]);
    await ok([...as('sre'), ...quarantine]);
    const release = ['agent', 'release', id, '--agent', dids.alpha!, '--sre', dids.sre!];
    await refused([...as('alpha'), ...release]);
    await ok([...as('alpha', 'sre'), ...release]);

    const asked = json(
      await ok([
        ...as('alpha'),
        '--json',
        'agent',
        'elevate',
        id,
        '--agent',
        dids.alpha!,
        '--ring',
        '1',
        '--ttl',
        '600',
        '--justification',
        'incident 42',
      ]),
    );
    const approve = (approver: string) => [
      'agent',
      'elevate',
      id,
      '--agent',
      dids.alpha!,
      '--approve',
      asked.elevationId,
      '--digest',
      asked.digest,
      '--approver',
      dids[approver]!,
    ];
    await refused([...as('alpha'), ...approve('beta')]);
    await ok([...as('beta'), ...approve('beta')]);
    const active = json(await ok([...as('gamma'), '--json', ...approve('gamma')]));
    assert.equal(active.state, 'active');

    const kill = ['agent', 'kill', id, '--agent', dids.alpha!, '--sre', dids.sre!, '--reason', 'runaway'];
    await refused([...as('alpha'), ...kill]);
    await ok([...as('sre'), ...kill]);
    const shown = json(await ok(['--json', 'session', 'show', id]));
    assert.ok(
      shown.controls.restricted.some((r: { did: string; kind: string }) => r.did === dids.alpha && r.kind === 'kill'),
      show(await hv(['--json', 'session', 'show', id])),
    );
  });

  it('revoke, slash, witness and a delegated join: refused with the wrong key, accepted with the DID the session requires', async () => {
    for (const name of ['admin', 'sre', 'alpha', 'beta', 'gamma', 'child'])
      dids[name] ??= (await ok(['keys', 'new', keyFile(name)])).stdout.trim();
    const id = uniqueId('cli-didkey-more');
    await ok([
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
    for (const [name, sigma] of [
      ['alpha', '0.97'],
      ['beta', '0.8'],
      ['gamma', '0.8'],
    ] as const) {
      await ok([...as(name), 'session', 'join', id, '--agent', dids[name]!, '--sigma', sigma, '--actions', ACTIONS]);
    }
    await ok([...as('admin'), 'session', 'activate', id]);

    // A delegated join speaks for the child and its parent: both sign.
    const delegated = ['session', 'join', id, '--agent', dids.child!, '--sigma', '0.8', '--delegated-by', dids.beta!];
    await refused([...as('child'), ...delegated]);
    await ok([...as('child', 'beta'), ...delegated]);

    // An elevation is asked by its agent and revoked by an SRE (or the agent), never by another participant.
    const elevate = [
      'agent',
      'elevate',
      id,
      '--agent',
      dids.gamma!,
      '--ring',
      '2',
      '--ttl',
      '600',
      '--justification',
      'rollout',
    ];
    await refused([...as('beta'), ...elevate]);
    await ok([...as('gamma'), ...elevate]);
    const revoke = ['agent', 'revoke', id, '--agent', dids.gamma!, '--by', dids.sre!];
    await refused([...as('gamma'), ...revoke]);
    await ok([...as('sre'), ...revoke]);

    // A ring 0 step waits for the SRE witness's co-sign.
    const sagaFile = path.join(dir, 'reconfigure.json');
    fs.writeFileSync(
      sagaFile,
      JSON.stringify({ steps: [{ actionId: 'reconfigure', agentDid: dids.alpha, approvalDeadlineSeconds: 120 }] }),
    );
    const started = json(await ok([...as('alpha'), '--json', 'saga', 'start', id, sagaFile]));
    const witness = ['saga', 'witness', id, started.sagaId, 'step-1', '--as', dids.sre!];
    await refused([...as('alpha'), ...witness]);
    await ok([...as('sre'), ...witness]);

    // A slash is a ring 0 act: the SRE witness signs it, not the agent.
    const slash = [
      'agent',
      'slash',
      id,
      '--agent',
      dids.gamma!,
      '--witness',
      dids.sre!,
      '--reason',
      'misbehaved',
      '--omega',
      '0.1',
    ];
    await refused([...as('gamma'), ...slash]);
    const slashed = await ok([...as('sre'), ...slash]);
    assert.match(slashed.stdout, new RegExp(`${dids.gamma} is slashed in ${id}`));
  });
});
