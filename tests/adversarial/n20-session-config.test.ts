/**
 * N20 (issue 24): `maxDurationSeconds` was never enforced, and `consistency`
 * and `externalCommitment` were read by nothing. Now a session ends itself when
 * its duration (counted from its creation, across continue-as-new) has passed:
 * a durable timer runs its own termination, so it commits and stores its
 * Merkle root as a terminate would. A config value the runtime does not
 * implement (`externalCommitment: true`: where a commitment is anchored is the
 * worker's setting) is refused at the start, naming the field.
 */
import assert from 'node:assert/strict';
import { isHypervisorError } from '../../src/core/errors';
import { verifyCommitment } from '../../src/core/commitment';
import { hypervisor, uniqueId } from '../helpers/hv';
import {
  expectSoundAudit,
  openSession,
  rawClient,
  refused,
  sessionWorkflowId,
  uid,
  until,
  workflowTaskFailures,
} from './raw';

const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';

describe('N20 — the session config is enforced or refused', function () {
  this.timeout(180_000);
  const touched: string[] = [];
  after(async () =>
    assert.deepEqual(await workflowTaskFailures(touched, { unhandledCommand: 'tally' }), [], 'no workflow task failed'),
  );

  it('N20: a session with a short maxDurationSeconds ends itself — across continue-as-new — with a verified root', async () => {
    const maxDurationSeconds = 10;
    const session = await openSession({ [alpha]: 0.8, [beta]: 0.8 }, { maxDurationSeconds }, { maxUpdatesPerRun: 10 });
    touched.push(session.workflowId);
    // Enough requests that the session continues as new: its duration still counts from its creation.
    for (let i = 0; i < 10; i++) await session.update('checkAction', { agentDid: alpha, actionId: 'draft' });
    await until(
      () => session.summary(),
      (s) => s.runs >= 2,
      'the session to continue as new',
    );
    const result = await session.handle.result();
    assert.ok(result.commitment.merkleRoot, 'the session ended with its Merkle root');

    const trail = await expectSoundAudit(session, []);
    const verified = verifyCommitment(result.commitment, trail.deltas);
    assert.equal(verified.ok, true, JSON.stringify(verified));
    assert.equal(result.commitment.deltaCount, trail.deltaCount);
    const close = trail.deltas.at(-1)!;
    assert.deepEqual(
      close.changes.map((c) => c.path),
      ['/state', '/maxDurationSeconds'],
      'the close is the last delta, and says why',
    );
    const lasted = close.at - trail.deltas[0]!.at;
    assert.ok(
      lasted >= maxDurationSeconds * 1000 && lasted < (maxDurationSeconds + 30) * 1000,
      `ended ${lasted} ms after its creation (max ${maxDurationSeconds} s)`,
    );
    const summary = await session.summary();
    assert.equal(summary.state, 'archived');
    assert.ok(summary.runs >= 2, 'it ended in a later run than the one it started in');
  });

  it('N20: a config value the runtime does not implement (externalCommitment: true) is refused, naming the field', async () => {
    const hv = await hypervisor();
    await assert.rejects(
      hv.createSession({
        sessionId: uniqueId('n20'),
        creatorDid: 'did:mesh:admin',
        config: { externalCommitment: true },
      }),
      (e) => isHypervisorError(e, 'INVALID_INPUT') && /config\.externalCommitment/.test((e as Error).message),
    );
    // Started raw, the workflow refuses it too.
    const { client, taskQueue } = await rawClient();
    const id = uid('n20');
    const handle = await client.workflow.start('sessionWorkflow', {
      taskQueue,
      workflowId: sessionWorkflowId(id),
      args: [{ sessionId: id, creatorDid: 'did:mesh:admin', config: { externalCommitment: true } }],
    });
    touched.push(handle.workflowId);
    await refused(handle.result(), 'INVALID_INPUT', /config\.externalCommitment: .*HV_ANCHOR_URL/);
    // What the runtime implements is accepted: the default, and either consistency (every request is decided in order).
    const ok = await openSession({ [alpha]: 0.8 }, { externalCommitment: false, consistency: 'STRONG' });
    touched.push(ok.workflowId);
    assert.equal((await ok.summary()).state, 'active');
  });
});
