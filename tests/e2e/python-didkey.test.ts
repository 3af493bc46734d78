/**
 * A Python client in a did:key session (issue 12): tests/e2e/python/signed_requests.py
 * checks the contract's test vector, makes its own did:key with PyCA
 * cryptography, and signs a join and then an approval bound to a step digest;
 * the session accepts both, the approval counts toward the quorum, and the
 * trail keeps the Python agent's signatures, which verify here.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ensurePythonVenv } from '../../scripts/e2eTools';
import { HypervisorClient } from '../../src/client';
import { generateDidKey } from '../../src/core/identity';
import { KeyRing } from '../../src/client/keys';
import { verifyStoredTrail } from '../../src/store/trail';
import { testEnv } from '../helpers/env';
import { uniqueId } from '../helpers/hv';
import { ACTIONS } from '../helpers/sessions';
import { runOk, stopProcesses } from './helpers/processes';

const SCRIPT = path.join(__dirname, 'python', 'signed_requests.py');
const VECTOR = path.join(__dirname, '..', '..', 'contract', 'vectors', 'signed-request.json');

describe('e2e: a Python client signs its requests to a did:key session', function () {
  this.timeout(180_000);
  let python: string;

  before(async function () {
    this.timeout(10 * 60_000);
    python = await ensurePythonVenv((line) => console.log(`      ${line}`));
  });

  after(() => stopProcesses());

  it('generates a did:key, signs a join and an approval, and the session accepts them', async () => {
    const env = await testEnv();
    const [creator, sre, alpha, beta] = [generateDidKey(), generateDidKey(), generateDidKey(), generateDidKey()];
    const hv = new HypervisorClient(env.client, env.taskQueue, env.store, new KeyRing([creator, sre, alpha, beta]));
    const session = await hv.createSession({
      sessionId: uniqueId('py-didkey'),
      creatorDid: creator.did,
      config: { identity: 'did:key', sreWitnesses: [sre.did] },
    });
    await session.join({ agentDid: alpha.did, sigmaRaw: 0.97, actions: ACTIONS });
    await session.join({ agentDid: beta.did, sigmaRaw: 0.8, actions: ACTIONS });

    const keyFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'hv-py-key-')), 'py.key');
    const run = async (args: string[]) => {
      const stdout = await runOk(
        python,
        [
          SCRIPT,
          '--address',
          env.address,
          '--namespace',
          env.namespace,
          '--vector',
          VECTOR,
          '--session-id',
          session.sessionId,
          '--key-file',
          keyFile,
          ...args,
        ],
        {
          env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', PYTHONUNBUFFERED: '1' },
          timeoutMs: 90_000,
        },
      );
      return JSON.parse(stdout.trim().split('\n').pop()!) as { did: string; vector: boolean; result: any };
    };

    const joined = await run(['join', '--sigma', '0.8', '--actions', JSON.stringify(ACTIONS)]);
    assert.equal(joined.vector, true, "Python computed the contract's test vector byte for byte");
    assert.match(joined.did, /^did:key:z6Mk/);
    assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);
    assert.deepEqual([joined.result.did, joined.result.ring], [joined.did, 2]);
    assert.equal((await session.participant(joined.did))?.active, true);

    await session.activate({ as: creator.did });
    const saga = await session.startSaga({
      steps: [{ actionId: 'wire-money', agentDid: alpha.did, input: { amount: 250 }, approvalDeadlineSeconds: 120 }],
    });
    await session.approve({ sagaId: saga.sagaId, stepId: 'step-1', approverDid: beta.did });
    const approved = await run([
      'approve',
      '--saga-id',
      saga.sagaId,
      '--step-id',
      'step-1',
      '--digest',
      saga.digests['step-1']!,
    ]);
    assert.deepEqual([approved.result.approvals, approved.result.quorum], [2, 2]);
    const snap = await saga.result();
    assert.equal(snap.saga.state, 'completed', snap.error ?? '');
    assert.deepEqual([...snap.grants['step-1']!.approvals].sort(), [beta.did, joined.did].sort());

    await session.terminate({ as: sre.did });
    const stored = await session.storedTrail();
    assert.equal(verifyStoredTrail(stored).ok, true, JSON.stringify(verifyStoredTrail(stored)));
    const { trail } = await session.audit();
    const byPython = trail.deltas.filter((d) => d.agentDid === joined.did);
    assert.equal(byPython.length, 2, 'the join and the approval');
    for (const d of byPython) assert.equal(d.signatures?.[0]?.signer, joined.did);
    const receipt = byPython[1]!.signatures![0]!.payload!;
    assert.deepEqual(
      [receipt.update, (receipt.request as { digest: string }).digest],
      ['approve', saga.digests['step-1']],
    );
  });
});
