import assert from 'node:assert/strict';
import { eventually, hypervisor, uniqueId } from '../helpers/hv';
import { activeSession } from '../helpers/sessions';
import { hv, json, show } from './runHv';

const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';
const gamma = 'did:mesh:gamma';

describe('hv session list, saga list, approvals list (child process on a real server)', function () {
  this.timeout(180_000);

  it('lists sessions by agent and state, as a table and as JSON', async () => {
    const agent = `did:mesh:${uniqueId('cli-lister')}`;
    const session = await activeSession({ [agent]: 0.8 });
    await eventually(
      async () => (await hypervisor()).listSessions({ agentDid: agent }),
      (r) => r[0]?.state === 'active',
      'the session in the index',
    );
    const run = await hv(['session', 'list', '--agent', agent, '--state', 'active']);
    assert.equal(run.code, 0, show(run));
    assert.match(run.stdout, /^Sessions \(1, newest first\)\n\s+session\s+state\s+agents\s+started\s+closed\n/);
    assert.match(
      run.stdout,
      new RegExp(`${session.sessionId}\\s+active\\s+${agent}\\s+\\d{4}-\\d\\d-\\d\\dT\\S+Z\\s+—`),
    );
    const asJson = json(await hv(['--json', 'session', 'list', '--agent', agent]));
    assert.deepEqual(
      asJson.sessions.map((r: any) => [r.sessionId, r.state, r.agentDids, r.workflowId, r.closedAt]),
      [[session.sessionId, 'active', [agent], session.handle.workflowId, null]],
    );
    const none = await hv(['session', 'list', '--agent', agent, '--state', 'archived']);
    assert.equal(none.code, 0, show(none));
    assert.match(none.stdout, /Sessions \(0, newest first\)\n\s+\(none\)/);
  });

  it('lists sagas of a session by state', async () => {
    const session = await activeSession();
    await (await session.startSaga({ sagaId: 'ok', steps: [{ actionId: 'draft', agentDid: alpha }] })).result();
    await eventually(
      async () => (await hypervisor()).listSagas({ sessionId: session.sessionId, state: 'completed' }),
      (r) => r.length === 1,
      'the saga in the index',
    );
    const run = await hv(['saga', 'list', '--session', session.sessionId, '--state', 'completed', '--agent', alpha]);
    assert.equal(run.code, 0, show(run));
    assert.match(
      run.stdout,
      new RegExp(`Sagas \\(1, newest first\\)\\n.*\\n.*\\n\\s+${session.sessionId}\\s+ok\\s+completed\\s+${alpha}\\s`),
    );
    const rows = json(await hv(['saga', 'list', '--session', session.sessionId, '--json'])).sagas;
    assert.deepEqual(
      rows.map((r: any) => [r.sagaId, r.state, r.status]),
      [['ok', 'completed', 'COMPLETED']],
    );
  });

  it('lists a waiting ring 1 step with what it waits for, since when and its deadline, and not once approved', async () => {
    const session = await activeSession({ [alpha]: 0.97, [beta]: 0.8, [gamma]: 0.8 });
    const saga = await session.startSaga({
      sagaId: 'wire',
      steps: [{ actionId: 'wire-money', agentDid: alpha, approvalDeadlineSeconds: 600 }],
    });
    await eventually(
      async () => (await hypervisor()).listApprovals({ sessionId: session.sessionId }),
      (r) => r.length === 1,
      'the step in the index',
      2000,
    );
    const run = await hv(['approvals', 'list', '--session', session.sessionId]);
    assert.equal(run.code, 0, show(run));
    assert.match(
      run.stdout,
      /^Steps waiting for approvals or a witness \(1, oldest first\)\n\s+session\s+saga\s+step\s+waits for\s+waiting\s+since\s+deadline\s+digest\n/,
    );
    assert.match(
      run.stdout,
      new RegExp(
        `${session.sessionId}\\s+wire\\s+step-1\\s+2 approvals\\s+\\d+s\\s+\\S+Z\\s+\\S+Z \\(in (9m \\d+s|10m)\\)\\s+${saga.digests['step-1']!.slice(0, 12)}…`,
      ),
    );
    const [row] = json(await hv(['--json', 'approvals', 'list', '--session', session.sessionId])).approvals;
    assert.deepEqual(
      [row.sessionId, row.sagaId, row.stepId, row.digest, row.waitFor, row.quorum],
      [session.sessionId, 'wire', 'step-1', saga.digests['step-1'], 'consensus', 2],
    );
    assert.ok(row.deadline > row.since);

    await session.approve({ sagaId: 'wire', stepId: 'step-1', approverDid: beta });
    await session.approve({ sagaId: 'wire', stepId: 'step-1', approverDid: gamma });
    await saga.result();
    const after = await eventually(
      async () => json(await hv(['--json', 'approvals', 'list', '--session', session.sessionId])),
      (r) => r.approvals.length === 0,
      'the approved step to leave the list',
      10_000,
    );
    assert.deepEqual(after, { approvals: [] });
  });

  it('refuses a bad filter before anything is sent (exit 2), naming the flag', async () => {
    const control = await hv(['session', 'list', '--agent', 'did:mesh:a\u0001b']);
    assert.equal(control.code, 2, show(control));
    assert.match(
      control.stderr,
      /usage error: --agent holds a control character \(U\+0001\) at character 11\n\s+what to do: run `hv session list --help`/,
    );
    const state = await hv(['saga', 'list', '--state', 'done']);
    assert.equal(state.code, 2, show(state));
    assert.match(
      state.stderr,
      /--state must be a saga state \(running, completed, failed, compensating, compensated, escalated\), got "done"/,
    );
    const limit = await hv(['approvals', 'list', '--limit', '0']);
    assert.equal(limit.code, 2, show(limit));
    assert.match(limit.stderr, /--limit must be an integer from 1 to 1000, got "0"/);
    const help = await hv(['--help']);
    for (const cmd of ['session list', 'saga list', 'approvals list'])
      assert.ok(help.stdout.includes(`hv ${cmd} `), `--help lists hv ${cmd}`);
  });
});
