/**
 * Open sagas, an agent's turn (SPEC §13), on a real server: steps appended one at a time, each gated, run
 * and answered; the turn completes when its agent ends it, and compensates every step that may have acted,
 * in reverse, once each, when the agent aborts it, its deadline passes or the agent is killed. A tool's
 * error is the step's answer and compensates nothing by itself.
 */
import assert from 'node:assert/strict';
import type { SessionHandle, TurnHandle } from '../../src/client';
import { isHypervisorError } from '../../src/core/errors';
import { verifyTrail } from '../../src/core/audit';
import { eventually, hypervisor, uniqueId } from '../helpers/hv';
import { ACTIONS, activeSession, asSre, SRE_WITNESSES } from '../helpers/sessions';
import { calls } from '../helpers/testHandlers';

const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';
const gamma = 'did:mesh:gamma';
const runs = (workflowId: string, phase: 'execute' | 'undo' | 'cancelled' = 'execute') =>
  (calls[workflowId] ?? []).filter((c) => c.phase === phase).map((c) => c.stepId);

/** The chain verifies, and names the turn's opening and each of its steps. */
async function expectTurnInTrail(session: SessionHandle, turn: TurnHandle, steps: string[]): Promise<void> {
  const { trail, verification } = await session.verifyAudit();
  assert.equal(verification.ok, true, JSON.stringify(verification));
  assert.equal(verifyTrail(JSON.parse(JSON.stringify(trail))).ok, true, 'the trail verifies offline');
  const paths = trail.deltas.flatMap((d) => d.changes.map((c) => c.path));
  assert.ok(paths.includes(`/sagas/${turn.sagaId}`), 'the turn opening is recorded');
  for (const stepId of steps) {
    const appended = trail.deltas.find((d) =>
      d.changes.some((c) => c.path === `/sagas/${turn.sagaId}/steps/${stepId}` && c.operation === 'add'),
    );
    assert.ok(appended, `the append of ${stepId} is recorded`);
    assert.equal(appended.agentDid, turn.agentDid, `the append of ${stepId} is the agent's`);
  }
}

describe('turns: open sagas (SPEC §13)', function () {
  this.timeout(120_000);

  it('a turn of three steps, ended, completes: each append answers with its step result', async () => {
    const session = await activeSession();
    const turn = await session.openTurn({ agentDid: alpha, description: 'three steps' });
    const answers = [];
    for (const actionId of ['draft', 'publish', 'notify']) answers.push(await turn.append({ actionId }));
    assert.deepEqual(
      answers.map((a) => [a.stepId, a.state, a.ok, a.result]),
      [
        ['step-1', 'committed', true, { done: 'step-1' }],
        ['step-2', 'committed', true, { done: 'step-2' }],
        ['step-3', 'committed', true, { done: 'step-3' }],
      ],
    );
    assert.deepEqual(await turn.end(), { sagaId: turn.sagaId, workflowId: turn.workflowId, state: 'ended' });
    const snap = await turn.result();
    assert.equal(snap.saga.state, 'completed', String(snap.error));
    assert.deepEqual(runs(turn.workflowId), ['step-1', 'step-2', 'step-3']);
    assert.deepEqual(runs(turn.workflowId, 'undo'), []);
    await eventually(
      () => session.sagas(),
      (sagas) => sagas.find((g) => g.sagaId === turn.sagaId)?.state === 'completed',
      'the session to record the end',
    );
    await expectTurnInTrail(session, turn, ['step-1', 'step-2', 'step-3']);
  });

  it('a turn aborted after three steps compensates 3, 2, 1, once each', async () => {
    const session = await activeSession();
    const turn = await session.openTurn({ agentDid: alpha });
    for (const actionId of ['draft', 'publish', 'notify']) assert.equal((await turn.append({ actionId })).ok, true);
    const aborted = await turn.abort('the model gave up');
    assert.equal(aborted.state, 'aborted');
    const snap = await turn.result();
    assert.equal(snap.saga.state, 'compensated');
    assert.match(String(snap.error), /aborted its turn: the model gave up/);
    assert.deepEqual(snap.compensationOrder, ['step-3', 'step-2', 'step-1']);
    assert.deepEqual(runs(turn.workflowId, 'undo'), ['step-3', 'step-2', 'step-1'], 'each undone once, in reverse');
    await assert.rejects(turn.append({ actionId: 'draft' }), (e) => isHypervisorError(e, 'TURN_NOT_OPEN'));
    await expectTurnInTrail(session, turn, ['step-1', 'step-2', 'step-3']);
  });

  it("a tool's error is the step's answer: the turn goes on, and nothing is compensated", async () => {
    const session = await activeSession();
    const turn = await session.openTurn({ agentDid: alpha });
    assert.equal((await turn.append({ actionId: 'draft' })).ok, true);
    const failed = await turn.append({ actionId: 'publish', input: { failAttempts: -1 } });
    assert.equal(failed.ok, false);
    assert.equal(failed.state, 'failed');
    assert.match(String(failed.error), /failed on purpose/);
    // The model recovers: another step, then it ends the turn.
    assert.equal((await turn.append({ actionId: 'notify' })).ok, true);
    await turn.end();
    const snap = await turn.result();
    assert.equal(snap.saga.state, 'completed', String(snap.error));
    assert.deepEqual(runs(turn.workflowId, 'undo'), [], 'no step was compensated');
    assert.deepEqual(
      snap.saga.steps.map((s) => [s.stepId, s.state]),
      [
        ['step-1', 'committed'],
        ['step-2', 'failed'],
        ['step-3', 'committed'],
      ],
    );
  });

  it('a step whose ring needs approvals waits for the quorum, then runs; a rejected one is its answer, and the turn goes on', async () => {
    const session = await activeSession({ [alpha]: 0.97, [beta]: 0.8, [gamma]: 0.8 });
    const turn = await session.openTurn({ agentDid: alpha });
    const waitingFor = (stepId: string) =>
      eventually(
        () => turn.saga.state(),
        (s) => s.waiting?.stepId === stepId,
        `${stepId} to wait for approvals`,
      );
    const approved = turn.append({ actionId: 'wire-money' });
    await waitingFor('step-1');
    assert.deepEqual(runs(turn.workflowId), [], 'it waits: nothing ran');
    for (const approverDid of [beta, gamma])
      await session.approve({ sagaId: turn.sagaId, stepId: 'step-1', approverDid });
    assert.equal((await approved).ok, true);
    const rejected = turn.append({ actionId: 'wire-money' });
    await waitingFor('step-2');
    await session.reject({ sagaId: turn.sagaId, stepId: 'step-2', approverDid: beta, reason: 'too much' });
    const answer = await rejected;
    assert.equal(answer.ok, false);
    assert.match(String(answer.error), /rejected by did:mesh:beta: too much/);
    assert.equal((await turn.append({ actionId: 'draft' })).ok, true, 'the turn goes on after a rejection');
    await turn.end();
    const snap = await turn.result();
    assert.equal(snap.saga.state, 'completed', String(snap.error));
    assert.deepEqual(runs(turn.workflowId), ['step-1', 'step-3']);
  });

  it('a turn goes on across its session continuing as new, and the new run learns its end', async () => {
    const hv = await hypervisor();
    const session = await hv.createSession({
      sessionId: uniqueId('turn-can'),
      creatorDid: 'did:mesh:admin',
      maxUpdatesPerRun: 10,
      config: { sreWitnesses: SRE_WITNESSES },
    });
    await session.join({ agentDid: alpha, sigmaRaw: 0.85, actions: ACTIONS });
    await session.activate();
    const turn = await session.openTurn({ agentDid: alpha });
    const answers = [];
    for (let i = 0; i < 9; i++) answers.push(await turn.append({ actionId: 'draft' }));
    assert.ok(
      answers.every((a) => a.ok),
      JSON.stringify(answers.filter((a) => !a.ok)),
    );
    await turn.end();
    const snap = await turn.result();
    assert.equal(snap.saga.state, 'completed', String(snap.error));
    assert.equal(runs(turn.workflowId).length, 9, 'each step ran once');
    const summary = await eventually(
      () => session.summary(),
      (s) => s.sagas.find((g) => g.sagaId === turn.sagaId)?.state === 'completed',
      'the new run to learn the end',
    );
    assert.ok(summary.runs >= 2, `the session continued as new (runs: ${summary.runs})`);
  });

  it('a turn whose deadline passes compensates what it did', async () => {
    const session = await activeSession();
    const turn = await session.openTurn({ agentDid: alpha, deadlineSeconds: 4 });
    for (const actionId of ['draft', 'publish']) assert.equal((await turn.append({ actionId })).ok, true);
    const snap = await turn.result();
    assert.equal(snap.saga.state, 'compensated');
    assert.match(String(snap.error), /deadline passed/);
    assert.deepEqual(runs(turn.workflowId, 'undo'), ['step-2', 'step-1']);
    await assert.rejects(turn.end(), (e) => isHypervisorError(e, 'TURN_NOT_OPEN'));
  });

  it('a deadline beyond config.turns.maxDeadlineSeconds is refused, naming the bound', async () => {
    const session = await activeSession(undefined, { turns: { maxDeadlineSeconds: 60, defaultDeadlineSeconds: 30 } });
    await assert.rejects(
      session.openTurn({ agentDid: alpha, deadlineSeconds: 61 }),
      (e) => isHypervisorError(e, 'INVALID_INPUT') && /maxDeadlineSeconds/.test(e.message),
    );
    const turn = await session.openTurn({ agentDid: alpha });
    assert.ok(Math.abs(turn.deadline - Date.now() - 30_000) < 10_000, 'the default deadline is the config’s');
    await turn.abort();
  });

  it('a turn of more than config.turns.maxSteps steps is refused TURN_FULL', async () => {
    const session = await activeSession(undefined, { turns: { maxSteps: 2 } });
    const turn = await session.openTurn({ agentDid: alpha });
    for (const actionId of ['draft', 'publish']) await turn.append({ actionId });
    await assert.rejects(
      turn.append({ actionId: 'notify' }),
      (e) => isHypervisorError(e, 'TURN_FULL') && /maxSteps/.test(e.message),
    );
    await turn.end();
    assert.equal((await turn.result()).saga.state, 'completed');
  });

  it('a session terminating under an open turn compensates it', async () => {
    const session = await activeSession();
    const turn = await session.openTurn({ agentDid: alpha });
    assert.equal((await turn.append({ actionId: 'draft' })).ok, true);
    await session.terminate();
    const snap = await turn.result();
    assert.equal(snap.saga.state, 'compensated');
    assert.match(String(snap.error), /session .* is (terminating|archived)/);
    assert.deepEqual(runs(turn.workflowId, 'undo'), ['step-1']);
  });

  it("a kill during the turn cancels its running step and compensates; no step of the agent runs after the kill's delta", async () => {
    const session = await activeSession({ [alpha]: 0.85, [beta]: 0.8 });
    const turn = await session.openTurn({ agentDid: alpha });
    assert.equal((await turn.append({ actionId: 'draft' })).ok, true);
    const slow = turn.append({ actionId: 'publish', input: { delayMs: 30_000 }, timeoutSeconds: 60 });
    await eventually(
      async () => runs(turn.workflowId),
      (r) => r.includes('step-2'),
      'step 2 to run',
    );
    const kill = await (await asSre(session)).kill({ agentDid: alpha, sreDid: SRE_WITNESSES[0]!, reason: 'runaway' });
    assert.deepEqual(kill.sagasHolding, [turn.sagaId], 'the turn held the kill before it was recorded');
    const answer = await slow;
    assert.equal(answer.ok, false, 'the running step did not commit');
    const snap = await turn.result();
    assert.equal(snap.saga.state, 'compensated');
    assert.match(String(snap.error), /was killed/);
    assert.deepEqual(snap.compensationOrder, ['step-2', 'step-1'], 'the cancelled step may have acted: undone first');
    assert.deepEqual(runs(turn.workflowId, 'cancelled'), ['step-2']);
    // Denied (its agent is killed), or not open (the session learned the turn's end first).
    await assert.rejects(
      turn.append({ actionId: 'notify' }),
      (e) => isHypervisorError(e, 'STEP_DENIED') || isHypervisorError(e, 'TURN_NOT_OPEN'),
    );
    const { trail, verification } = await session.verifyAudit();
    assert.equal(verification.ok, true);
    const killDelta = trail.deltas.find((d) => d.changes.some((c) => c.path === `/controls/${alpha}`));
    assert.ok(killDelta, 'the kill is in the trail');
    const after = (calls[turn.workflowId] ?? []).filter((c) => c.phase === 'execute' && c.at > killDelta.at);
    assert.deepEqual(after, [], "no step of the killed agent ran after the kill's delta");
  });

  it('a kill while the turn waits for its next step compensates it', async () => {
    const session = await activeSession({ [alpha]: 0.85, [beta]: 0.8 });
    const turn = await session.openTurn({ agentDid: alpha });
    for (const actionId of ['draft', 'publish']) assert.equal((await turn.append({ actionId })).ok, true);
    const kill = await (await asSre(session)).kill({ agentDid: alpha, sreDid: SRE_WITNESSES[0]!, reason: 'idle kill' });
    assert.deepEqual(kill.sagasHolding, [turn.sagaId]);
    const snap = await turn.result();
    assert.equal(snap.saga.state, 'compensated');
    assert.deepEqual(runs(turn.workflowId, 'undo'), ['step-2', 'step-1']);
    assert.deepEqual(runs(turn.workflowId), ['step-1', 'step-2'], 'nothing ran after the kill');
  });
});
