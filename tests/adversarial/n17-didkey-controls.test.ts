/**
 * Controls and evidence in a did:key session through the typed client, with
 * key files (issue 19, N17): each SRE, approver, revoker and parent request
 * is signed by the DID the session requires — the registry's signer rule —
 * and accepted; signed only by the agent it is refused.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { HypervisorClient, type SessionHandle } from '../../src/client';
import { isHypervisorError, type ErrorCode } from '../../src/core/errors';
import { KeyRing, writeNewKeyFile } from '../../src/client/keys';
import { MESSAGES } from '../../src/contract/messages';
import { testEnv } from '../helpers/env';
import { eventually, uniqueId } from '../helpers/hv';
import { ACTIONS } from '../helpers/sessions';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hv-didkey-controls-'));
const NAMES = ['creator', 'sre', 'alpha', 'beta', 'gamma', 'child'] as const;
type Name = (typeof NAMES)[number];
const did = {} as Record<Name, string>;
const file = (name: Name) => path.join(dir, `${name}.key`);

/** The session as seen by a client holding the key files of `names`. */
async function as(sessionId: string, ...names: Name[]): Promise<SessionHandle> {
  const env = await testEnv();
  return new HypervisorClient(env.client, env.taskQueue, env.store, KeyRing.fromFiles(names.map(file))).session(
    sessionId,
  );
}

const refused = (p: Promise<unknown>, code: ErrorCode = 'SIGNATURE_REQUIRED') =>
  assert.rejects(p, (e) => isHypervisorError(e, code) || assert.fail(`expected ${code}, got ${String(e)}`));

describe('N17: did:key controls — the typed client signs as the session requires', function () {
  this.timeout(180_000);
  let id: string;

  before(async () => {
    for (const name of NAMES) did[name] = writeNewKeyFile(file(name)).did;
    const env = await testEnv();
    id = uniqueId('didkey-controls');
    const creator = new HypervisorClient(env.client, env.taskQueue, env.store, KeyRing.fromFiles([file('creator')]));
    await creator.createSession({
      sessionId: id,
      creatorDid: did.creator,
      config: { identity: 'did:key', sreWitnesses: [did.sre] },
    });
    for (const [name, sigmaRaw] of [
      ['alpha', 0.97],
      ['beta', 0.8],
      ['gamma', 0.8],
    ] as const) {
      await (await as(id, name)).join({ agentDid: did[name], sigmaRaw, actions: ACTIONS });
    }
    await (await as(id, 'creator')).activate();
  });

  it("registers exactly the registry's messages, each of its kind", async () => {
    const session = await as(id);
    type Meta = {
      definition: Record<
        'queryDefinitions' | 'signalDefinitions' | 'updateDefinitions',
        { name: string; description?: string }[]
      >;
    };
    const meta = await session.handle.query<Meta>('__temporal_workflow_metadata');
    const registered = (kind: 'query' | 'signal' | 'update') =>
      meta.definition[`${kind}Definitions`]
        .map((d) => d.name)
        .filter((n) => !n.startsWith('__'))
        .sort();
    const declared = (kind: string) =>
      Object.entries(MESSAGES)
        .filter(([, m]) => m.kind === kind && m.workflow === 'sessionWorkflow')
        .map(([n]) => n)
        .sort();
    for (const kind of ['query', 'signal', 'update'] as const)
      assert.deepEqual(registered(kind), declared(kind), `${kind}s of sessionWorkflow`);
    for (const d of meta.definition.updateDefinitions) {
      const m = Object.hasOwn(MESSAGES, d.name) ? MESSAGES[d.name as keyof typeof MESSAGES] : undefined;
      assert.equal(d.description, m?.description, `${d.name}: the registry's description`);
    }
  });

  it('quarantine and release: refused when signed by the agent, accepted when signed by the SRE', async () => {
    const req = { agentDid: did.beta, sreDid: did.sre, reason: 'odd tool calls', ttlSeconds: 600 };
    await refused((await as(id, 'beta')).quarantine(req));
    const quarantined = await (await as(id, 'sre', 'beta')).quarantine(req);
    assert.equal(quarantined.agentDid, did.beta);
    await refused((await as(id, 'beta')).release({ agentDid: did.beta, sreDid: did.sre }));
    await (await as(id, 'beta', 'sre')).release({ agentDid: did.beta, sreDid: did.sre, reason: 'fine' });
    assert.deepEqual(
      (await (await as(id)).summary()).controls.restricted.filter((r) => r.did === did.beta),
      [],
    );
  });

  it('elevation: requested by the agent; approved by the approvers, not the agent; revoked by the SRE, not the agent', async () => {
    const e = await (
      await as(id, 'alpha')
    ).requestElevation({ agentDid: did.alpha, ring: 1, ttlSeconds: 600, justification: 'incident 42' });
    const approval = (approver: Name) => ({
      agentDid: did.alpha,
      elevationId: e.elevationId,
      digest: e.digest,
      approverDid: did[approver],
    });
    await refused((await as(id, 'alpha')).approveElevation(approval('beta')));
    await (await as(id, 'alpha', 'beta')).approveElevation(approval('beta'));
    const active = await (await as(id, 'gamma')).approveElevation(approval('gamma'));
    assert.equal(active.state, 'active');
    await refused((await as(id, 'alpha')).revokeElevation({ agentDid: did.alpha, byDid: did.sre, reason: 'done' }));
    const revoked = await (
      await as(id, 'sre')
    ).revokeElevation({ agentDid: did.alpha, byDid: did.sre, reason: 'done' });
    assert.equal(revoked.state, 'revoked');
  });

  it('witness: a ring 0 step is co-signed by the SRE, not by its agent', async () => {
    const saga = await (
      await as(id, 'alpha')
    ).startSaga({ steps: [{ actionId: 'reconfigure', agentDid: did.alpha, approvalDeadlineSeconds: 120 }] });
    await eventually(
      () => saga.state(),
      (s) => s.waiting?.stepId === 'step-1',
      'the step to wait for its witness',
    );
    const step = { sagaId: saga.sagaId, stepId: 'step-1', witnessDid: did.sre };
    await refused((await as(id, 'alpha')).witness(step));
    const evidence = await (await as(id, 'sre')).witness(step);
    assert.equal(evidence.witnessed, true);
  });

  it('slash: refused when signed by the agent, accepted when signed by the SRE witness', async () => {
    const req = { agentDid: did.gamma, reason: 'misbehaved', witnessDid: did.sre, omega: 0.1 };
    await refused((await as(id, 'gamma')).slash(req));
    const result = await (await as(id, 'sre')).slash(req);
    assert.ok(result.outcome.slashes.some((s) => s.vouchee === did.gamma));
  });

  it('a delegated join: signed by the child alone it is refused; by the child and its parent it is accepted', async () => {
    const req = { agentDid: did.child, sigmaRaw: 0.8, actions: ACTIONS, delegatedBy: did.beta };
    await refused((await as(id, 'child')).join(req));
    const joined = await (await as(id, 'child', 'beta')).join(req);
    assert.equal(joined.did, did.child);
  });

  it('kill: refused when signed by the agent, accepted when signed by the SRE; the session terminates as its creator', async () => {
    await refused((await as(id, 'alpha')).kill({ agentDid: did.alpha, sreDid: did.sre, reason: 'runaway' }));
    const killed = await (await as(id, 'sre')).kill({ agentDid: did.alpha, sreDid: did.sre, reason: 'runaway' });
    assert.equal(killed.agentDid, did.alpha);
    await (await as(id, 'creator')).terminate();
    assert.equal((await (await as(id)).verifyAudit()).verification.ok, true);
  });
});
