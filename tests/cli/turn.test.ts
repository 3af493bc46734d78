import assert from 'node:assert/strict';
import { activeSession } from '../helpers/sessions';
import { calls } from '../helpers/testHandlers';
import { hv, json, show } from './runHv';

const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';

describe('hv turn: open, append, end, abort an agent’s turn (child process on a real server)', function () {
  this.timeout(180_000);

  it('opens a turn, appends steps (a tool error exits 5 and the turn goes on), aborts it: compensated in reverse', async () => {
    const session = await activeSession();
    const s = session.sessionId;
    const open = await hv(['turn', 'open', s, '--agent', alpha, '--id', 't1', '--deadline', '600']);
    assert.equal(open.code, 0, show(open));
    assert.match(open.stdout, /Turn t1 of did:mesh:alpha is open until /);
    const first = await hv(['--json', 'turn', 'append', s, 't1', '--agent', alpha, '--action', 'draft']);
    assert.equal(first.code, 0, show(first));
    assert.deepEqual((({ stepId, state, ok, result }) => ({ stepId, state, ok, result }))(json(first)), {
      stepId: 'step-1',
      state: 'committed',
      ok: true,
      result: { done: 'step-1' },
    });
    const failed = await hv([
      'turn',
      'append',
      s,
      't1',
      '--agent',
      alpha,
      '--action',
      'publish',
      '--input',
      '{"failAttempts":-1}',
    ]);
    assert.equal(failed.code, 5, show(failed));
    assert.match(failed.stdout, /step-2 \(publish\) failed: .*failed on purpose/);
    const third = await hv(['turn', 'append', s, 't1', '--agent', alpha, '--action', 'notify', '--step', 'last']);
    assert.equal(third.code, 0, show(third));
    assert.match(third.stdout, /last \(notify\) committed: \{"done":"last"\}/);
    const other = await hv(['turn', 'append', s, 't1', '--agent', beta, '--action', 'draft']);
    assert.equal(other.code, 1, show(other));
    assert.match(other.stderr, /NOT_TURN_AGENT/);
    const abort = await hv(['turn', 'abort', s, 't1', '--agent', alpha, '--reason', 'the model gave up']);
    assert.equal(abort.code, 0, show(abort));
    assert.match(abort.stdout, /Turn t1 aborted/);
    const snap = await (await session.saga('t1')).result();
    assert.equal(snap.saga.state, 'compensated');
    assert.deepEqual(snap.compensationOrder, ['last', 'step-1']);
    const undone = (calls[snap.workflowId] ?? []).filter((c) => c.phase === 'undo').map((c) => c.stepId);
    assert.deepEqual(undone, ['last', 'step-1']);
  });

  it('is listed in --help, each command with its usage', async () => {
    const run = await hv(['--help']);
    assert.equal(run.code, 0, show(run));
    for (const cmd of ['turn open', 'turn append', 'turn end', 'turn abort'])
      assert.ok(run.stdout.includes(`hv ${cmd} `), `--help lists hv ${cmd}`);
    const one = await hv(['turn', 'append', '--help']);
    assert.equal(one.code, 0, show(one));
    assert.match(one.stdout, /--input JSON\|FILE/);
  });

  it('ends a turn, and refuses a bad flag before sending anything', async () => {
    const session = await activeSession();
    const s = session.sessionId;
    assert.equal((await hv(['turn', 'open', s, '--agent', alpha, '--id', 't2'])).code, 0);
    const bad = await hv(['turn', 'append', s, 't2', '--agent', alpha]);
    assert.equal(bad.code, 2, show(bad));
    assert.match(bad.stderr, /needs --action/);
    const end = await hv(['turn', 'end', s, 't2', '--agent', alpha]);
    assert.equal(end.code, 0, show(end));
    assert.equal((await (await session.saga('t2')).result()).saga.state, 'completed');
    const again = await hv(['turn', 'end', s, 't2', '--agent', alpha]);
    assert.equal(again.code, 1, show(again));
    assert.match(again.stderr, /TURN_NOT_OPEN/);
  });
});
