import assert from 'node:assert/strict';
import { hypervisor } from '../helpers/hv';
import { activeSession } from '../helpers/sessions';
import { SRE, sreKeyFile } from '../helpers/sre';
import { eventually } from '../helpers/hv';
import { hv, json, show, tempDir } from './runHv';

const alpha = 'did:mesh:alpha';

describe('hv saga retry|skip|compensate|fork (SPEC §14; child process on a real server)', function () {
  this.timeout(180_000);

  it('an SRE compensates a saga awaiting its operator (unsigned: refused); then forks it from step 2, linked both ways', async () => {
    const session = await activeSession();
    const saga = await session.startSaga({
      sagaId: 'awaits',
      onFailure: { 'await-operator': { deadlineSeconds: 600 } },
      steps: [
        { actionId: 'draft', agentDid: alpha },
        { actionId: 'publish', agentDid: alpha, input: { failAttempts: -1 } },
        { actionId: 'notify', agentDid: alpha },
      ],
    });
    await eventually(
      () => saga.state(),
      (s) => s.awaitingOperator?.stepId === 'step-2',
      'the saga to await its operator',
    );
    await eventually(
      () => session.sagas(),
      (rs) => rs.find((r) => r.sagaId === 'awaits')?.awaiting?.stepId === 'step-2',
      'the session to learn it',
    );
    const listed = await hv(['approvals', 'list', '--session', session.sessionId]);
    assert.equal(listed.code, 0, show(listed));
    assert.match(listed.stdout, /awaits\s+step-2\s+operator/);

    const unsigned = await hv(['saga', 'retry', session.sessionId, 'awaits', '--as', SRE]);
    assert.notEqual(unsigned.code, 0, show(unsigned));
    assert.match(unsigned.stderr, /SIGNATURE_REQUIRED/);

    const key = ['--key', sreKeyFile(tempDir())];
    const skip = await hv([...key, 'saga', 'skip', session.sessionId, 'awaits', 'step-2', '--as', SRE]);
    assert.notEqual(skip.code, 0, show(skip));
    assert.match(skip.stderr, /NOT_SKIPPABLE/);

    const run = await hv([
      ...key,
      '--json',
      'saga',
      'compensate',
      session.sessionId,
      'awaits',
      'step-2',
      '--as',
      SRE,
      '--reason',
      'give up',
    ]);
    assert.equal(run.code, 0, show(run));
    assert.deepEqual(json(run), {
      sessionId: session.sessionId,
      sagaId: 'awaits',
      stepId: 'step-2',
      round: 1,
      decision: 'compensate',
      by: SRE,
    });
    const ended = await saga.result();
    assert.equal(ended.saga.state, 'compensated');
    assert.deepEqual(ended.compensationOrder, ['step-1']);
    await eventually(
      () => session.sagas(),
      (rs) => rs.find((r) => r.sagaId === 'awaits')?.state === 'compensated',
      'the session to record the outcome',
    );

    const fork = await hv(['--json', 'saga', 'fork', session.sessionId, 'awaits', '--from', 'step-2', '--id', 'again']);
    assert.equal(fork.code, 0, show(fork));
    assert.deepEqual(json(fork).forkedFrom, { sagaId: 'awaits', stepId: 'step-2' });
    const again = await (await hypervisor()).session(session.sessionId).saga('again');
    const result = await again.result();
    assert.deepEqual(
      result.saga.steps.map((s) => s.stepId),
      ['step-2', 'step-3'],
    );
    const records = await eventually(
      () => session.sagas(),
      (rs) => rs.find((r) => r.sagaId === 'again')?.state !== 'running',
      'the fork to end',
    );
    assert.deepEqual(records.find((r) => r.sagaId === 'awaits')?.forks, ['again']);
    assert.deepEqual(records.find((r) => r.sagaId === 'again')?.forkedFrom, { sagaId: 'awaits', stepId: 'step-2' });
  });
});
