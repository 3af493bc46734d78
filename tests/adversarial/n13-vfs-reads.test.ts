/**
 * N13 (issue 24): VFS reads were checked against whatever DID an
 * unauthenticated query named, and file contents sat in one global table
 * keyed by an unsalted hash, kept forever. Now, in a did:key session, a read
 * is a signed request (vfsRead) checked for the DID that signed it; contents
 * are kept under their session and go with its VFS at termination.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { HypervisorClient, type SessionHandle } from '../../src/client';
import { KeyRing, writeNewKeyFile } from '../../src/client/keys';
import { isHypervisorError, type ErrorCode } from '../../src/core/errors';
import { testEnv } from '../helpers/env';
import { uniqueId } from '../helpers/hv';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hv-n13-'));
const NAMES = ['creator', 'alpha', 'beta', 'mallory'] as const;
type Name = (typeof NAMES)[number];
const did = {} as Record<Name, string>;
const file = (name: Name) => path.join(dir, `${name}.key`);

async function as(sessionId: string, ...names: Name[]): Promise<SessionHandle> {
  const env = await testEnv();
  return new HypervisorClient(
    env.client,
    env.taskQueue,
    env.store,
    names.length ? KeyRing.fromFiles(names.map(file)) : undefined,
  ).session(sessionId);
}
const refused = (p: Promise<unknown>, code: ErrorCode) =>
  assert.rejects(p, (e) => isHypervisorError(e, code) || assert.fail(`expected ${code}, got ${String(e)}`));

describe('N13 — VFS reads are signed in did:key sessions; contents belong to their session', function () {
  this.timeout(120_000);

  it("a restricted file is read only by a request its permitted agent signed; its contents are the session's and go at termination", async () => {
    for (const name of NAMES) did[name] = writeNewKeyFile(file(name)).did;
    const env = await testEnv();
    const id = uniqueId('n13');
    const creator = new HypervisorClient(env.client, env.taskQueue, env.store, KeyRing.fromFiles([file('creator')]));
    await creator.createSession({ sessionId: id, creatorDid: did.creator, config: { identity: 'did:key' } });
    for (const name of ['alpha', 'beta', 'mallory'] as const)
      await (await as(id, name)).join({ agentDid: did[name], sigmaRaw: 0.8 });
    await (await as(id, 'creator')).activate();
    const alpha = await as(id, 'alpha');
    await alpha.vfsWrite({ agentDid: did.alpha, path: `/sessions/${id}/plan.md`, content: 'the secret plan' });
    await alpha.vfsSetPermissions({
      agentDid: did.alpha,
      path: `/sessions/${id}/plan.md`,
      allowedDids: [did.alpha, did.beta],
    });

    // An unauthenticated query naming a permitted DID learns nothing now.
    const outsider = await as(id);
    const queried = await outsider.handle.query('vfsFile', `/sessions/${id}/plan.md`, did.beta).then(
      () => 'answered',
      (e: Error) => e.message,
    );
    assert.match(queried, /SIGNATURE_REQUIRED/, 'the vfsFile query is refused in a did:key session');
    // Mallory names beta but signs as herself: refused; unsigned: refused.
    await refused(
      (await as(id, 'mallory')).send('vfsRead', { agentDid: did.beta, path: `/sessions/${id}/plan.md` }),
      'SIGNATURE_REQUIRED',
    );
    await refused(
      outsider.send('vfsRead', { agentDid: did.beta, path: `/sessions/${id}/plan.md` }),
      'SIGNATURE_REQUIRED',
    );
    // Mallory as herself: not permitted.
    await refused(
      (await as(id, 'mallory')).send('vfsRead', { agentDid: did.mallory, path: `/sessions/${id}/plan.md` }),
      'PERMISSION_DENIED',
    );
    // Beta, signed: the file, and its contents from the store under this session.
    const beta = await as(id, 'beta');
    assert.equal(await beta.vfsFile(`/sessions/${id}/plan.md`, did.beta), 'the secret plan');
    const ref = await beta.vfsStat(`/sessions/${id}/plan.md`, did.beta);
    assert.equal(
      await env.store.getFile('another-session', ref.contentHash),
      null,
      'another session cannot read the contents by their hash',
    );

    await (await as(id, 'creator')).terminate();
    assert.equal(await env.store.getFile(id, ref.contentHash), null, 'the contents went with the VFS at termination');
  });
});
