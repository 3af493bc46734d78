import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { hypervisor, uniqueId } from '../helpers/hv';
import { activeSession } from '../helpers/sessions';
import { calls } from '../helpers/testHandlers';
import { hv, json, show, tempDir } from './runHv';

const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';
const gamma = 'did:mesh:gamma';

function writeFile(name: string, text: string): string {
  const file = path.join(tempDir(), name);
  fs.writeFileSync(file, text);
  return file;
}

describe('hv saga: start from YAML with --wait, show, approve (child process on a real server)', function () {
  this.timeout(180_000);

  it('waits for a saga that compensates: progress while waiting, the steps and order, exit 5', async () => {
    const session = await activeSession();
    const file = writeFile(
      'saga.yaml',
      [
        'sagaId: refund',
        'description: draft then publish; publish always fails',
        'steps:',
        '  - actionId: draft',
        `    agentDid: ${alpha}`,
        '  - actionId: reserve',
        `    agentDid: ${beta}`,
        '  - actionId: publish',
        `    agentDid: ${alpha}`,
        '    input: { failAttempts: -1 }',
        '    retry: { maximumAttempts: 2, initialIntervalSeconds: 0.1 }',
        '',
      ].join('\n'),
    );
    const run = await hv(['saga', 'start', session.sessionId, file, '--wait']);
    assert.equal(run.code, 5, show(run));
    // Not a TTY: progress comes as lines on stderr, then the outcome.
    assert.match(run.stderr, /Started saga refund in session .*; waiting for its outcome/);
    assert.match(run.stderr, /^\[\d+s\] saga refund (running|compensating)/m);
    assert.match(run.stderr, /saga refund ended compensated: .*attempt 2 failed on purpose/);
    assert.match(run.stdout, /Saga refund of session .* — compensated/);
    assert.match(run.stdout, /step\s+action\s+agent\s+state\s+attempts\s+error/);
    assert.match(run.stdout, /step-1\s+draft\s+did:mesh:alpha\s+compensated\s+1/);
    assert.match(run.stdout, /step-2\s+reserve\s+did:mesh:beta\s+compensated\s+1/);
    // Retried, so it may have acted on attempt 1: undone first (SPEC §6).
    assert.match(run.stdout, /step-3\s+publish\s+did:mesh:alpha\s+compensated\s+2\s+attempt 2 failed on purpose/);
    assert.match(run.stdout, /Compensation order: step-3 → step-2 → step-1/);
    // What the CLI printed is what the workflow did.
    const result = await (await (await hypervisor()).session(session.sessionId).saga('refund')).result();
    assert.deepEqual(result.compensationOrder, ['step-3', 'step-2', 'step-1']);
    assert.deepEqual(
      calls[result.workflowId]!.filter((c) => c.phase === 'undo').map((c) => c.stepId),
      ['step-3', 'step-2', 'step-1'],
    );

    const shown = await hv(['saga', 'show', session.sessionId, 'refund', '--json']);
    assert.equal(shown.code, 0, show(shown));
    const snap = json(shown);
    assert.equal(snap.saga.state, 'compensated');
    assert.deepEqual(snap.compensationOrder, ['step-3', 'step-2', 'step-1']);
    assert.equal(snap.failedStepId, 'step-3');
  });

  it('starts a saga with a parallel group from YAML, and show prints the group: policy, needed, how it was decided', async () => {
    const session = await activeSession();
    const file = writeFile(
      'group.yaml',
      [
        'sagaId: fan-out',
        'steps:',
        '  - groupId: notify',
        '    policy: MAJORITY',
        '    parallel:',
        '      - actionId: draft',
        `        agentDid: ${alpha}`,
        '      - actionId: reserve',
        `        agentDid: ${beta}`,
        '      - actionId: publish',
        `        agentDid: ${gamma}`,
        '        input: { failAttempts: -1 }',
        '',
      ].join('\n'),
    );
    const run = await hv(['saga', 'start', session.sessionId, file, '--wait']);
    assert.equal(run.code, 0, show(run));
    assert.match(run.stdout, /notify\.b3\s+publish\s+did:mesh:gamma\s+failed/);
    assert.match(run.stdout, /Groups\n\s+group\s+policy\s+needed\s+state\s+decided by\s+kept/);
    assert.match(run.stdout, /notify\s+MAJORITY\s+2 of 3\s+met\s+notify\.b[12]\s+notify\.b[12], notify\.b[12]/);
  });

  it('waits for a saga that completes: exit 0, and --json prints only the snapshot', async () => {
    const session = await activeSession();
    const file = writeFile('saga.json', JSON.stringify({ steps: [{ actionId: 'draft', agentDid: alpha }] }));
    const run = await hv(['saga', 'start', session.sessionId, file, '--wait', '--id', 'ok-1', '--json']);
    assert.equal(run.code, 0, show(run));
    assert.equal(run.stderr, '');
    const snap = json(run);
    assert.equal(snap.saga.sagaId, 'ok-1');
    assert.equal(snap.saga.state, 'completed');
    assert.equal(snap.saga.steps[0].state, 'committed');
  });

  it('rejects an invalid saga file with the offending fields (exit 2) and a saga in a session that is not active (exit 1)', async () => {
    const bad = writeFile('bad.yaml', 'steps:\n  - actionId: draft\n    agentDid: alpha\n');
    const run = await hv(['saga', 'start', 'whatever', bad]);
    assert.equal(run.code, 2, show(run));
    assert.match(run.stderr, /usage error: invalid saga file .*bad\.yaml: steps\.0\.agentDid: must be a DID/);

    const client = await hypervisor();
    const id = uniqueId('cli');
    await client.createSession({ sessionId: id, creatorDid: 'did:mesh:admin' });
    const good = writeFile('good.yaml', `steps:\n  - actionId: draft\n    agentDid: ${alpha}\n`);
    const notActive = await hv(['saga', 'start', id, good]);
    assert.equal(notActive.code, 1, show(notActive));
    assert.match(notActive.stderr, /error INVALID_TRANSITION: cannot start a saga in session .* in state handshaking/);
  });

  it("approves a ring 1 step: the own agent's approval is refused, a quorum of others lets it run", async () => {
    const session = await activeSession({ [alpha]: 0.97, [beta]: 0.8, [gamma]: 0.8 });
    const file = writeFile(
      'wire.yaml',
      `sagaId: wire\nsteps:\n  - actionId: wire-money\n    agentDid: ${alpha}\n    approvalDeadlineSeconds: 120\n`,
    );
    const started = await hv(['saga', 'start', session.sessionId, file]);
    assert.equal(started.code, 0, show(started));
    assert.match(started.stdout, /Started saga wire in session .*\nFollow it: hv saga show .* wire/);

    const own = await hv(['saga', 'approve', session.sessionId, 'wire', 'step-1', '--as', alpha]);
    assert.equal(own.code, 1, show(own));
    assert.match(own.stderr, /error SELF_APPROVAL: approver did:mesh:alpha is the agent the request is for/);

    const stranger = await hv(['saga', 'approve', session.sessionId, 'wire', 'step-1', '--as', 'did:mesh:stranger']);
    assert.equal(stranger.code, 1, show(stranger));
    assert.match(stranger.stderr, /error AGENT_NOT_FOUND/);

    const noStep = await hv(['saga', 'approve', session.sessionId, 'wire', 'step-9', '--as', beta]);
    assert.equal(noStep.code, 1, show(noStep));
    assert.match(noStep.stderr, /error STEP_NOT_FOUND: saga wire has no step step-9; its steps: step-1/);

    const first = await hv(['saga', 'approve', session.sessionId, 'wire', 'step-1', '--as', beta]);
    assert.equal(first.code, 0, show(first));
    assert.match(first.stdout, /did:mesh:beta approved step-1 of saga wire: 1\/2 approvals \(digest [0-9a-f]{12}…\)/);
    const saga = await (await hypervisor()).session(session.sessionId).saga('wire');
    assert.equal((await saga.state()).saga.steps[0]!.state, 'pending', 'one approval of two is not a quorum');

    const second = await hv(['saga', 'approve', session.sessionId, 'wire', 'step-1', '--as', gamma, '--json']);
    assert.equal(second.code, 0, show(second));
    assert.deepEqual([json(second).approvals, json(second).quorum], [2, 2]);
    const result = await saga.result();
    assert.equal(result.saga.state, 'completed');
    assert.deepEqual(result.grants['step-1']!.approvals, [beta, gamma]);

    const late = await hv(['saga', 'approve', session.sessionId, 'wire', 'step-1', '--as', beta]);
    assert.equal(late.code, 1, show(late));
    assert.match(late.stderr, /error SAGA_ENDED: cannot approve: saga wire is completed/);
  });

  it('tells an unknown saga from an unknown session', async () => {
    const session = await activeSession();
    const noSaga = await hv(['saga', 'show', session.sessionId, 'nope']);
    assert.equal(noSaga.code, 1, show(noSaga));
    assert.match(noSaga.stderr, /error SAGA_NOT_FOUND: saga nope not found in session/);
    const noSession = await hv(['saga', 'show', uniqueId('missing'), 'nope']);
    assert.equal(noSession.code, 1, show(noSession));
    assert.match(noSession.stderr, /error SESSION_NOT_FOUND/);
  });
});
