/**
 * Attacks on a turn's direct steps (SPEC §13, §11; docs/TURNS.md): `takeStep` brings a step to the turn's
 * saga and no one signs it, so it must grant nothing. A step the session never appended runs nothing and
 * leaves nothing in the saga; a step brought with another input or other retries than appended does not
 * run, and the agent's own runs once; one brought twice runs once; an outsider's claim of a direct step
 * changes nothing; a step of an aborted turn never runs; another agent's step, or one brought to a
 * declared saga, is refused before it is recorded.
 */
import assert from 'node:assert/strict';
import type { Client } from '@temporalio/client';
import type { SessionHandle, TurnHandle } from '../../src/client';
import type { StepAnswer } from '../../src/contract/turns';
import { activeSession } from '../helpers/sessions';
import { eventName, handlerCalls, history, rawClient, RawSession, until, workflowTaskFailures } from './raw';

const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';

describe('attacks on direct steps of a turn (SPEC §13, §11)', function () {
  this.timeout(180_000);
  const touched: string[] = [];
  let session: SessionHandle;
  let raw: RawSession;
  let client: Client;

  before(async () => {
    session = await activeSession();
    client = (await rawClient()).client;
    raw = new RawSession(session.sessionId, session.handle, client);
    touched.push(session.handle.workflowId);
  });

  after(async () => {
    assert.deepEqual(await workflowTaskFailures(touched, { unhandledCommand: 'tally' }), [], 'no workflow task failed');
  });

  async function openTurn(): Promise<TurnHandle> {
    const turn = await session.openTurn({ agentDid: alpha });
    touched.push(turn.workflowId);
    return turn;
  }
  /** Once its first step ran (read from the session: the first step of an action is), the saga waits for the next. */
  async function firstStep(turn: TurnHandle): Promise<void> {
    assert.equal((await turn.append({ actionId: 'draft' })).ok, true, 'the saga holds the view of draft');
    await until(
      () => history(client, turn.workflowId),
      (events) => eventName(events.at(-1)!) === 'EVENT_TYPE_TIMER_STARTED',
      `turn ${turn.sagaId} to wait for its next step`,
    );
  }
  const take = (turn: TurnHandle, step: unknown) =>
    client.workflow.getHandle(turn.workflowId).executeUpdate<StepAnswer, [unknown]>('takeStep', { args: [step] });
  const times = (turn: TurnHandle, stepId: string) => handlerCalls(turn.workflowId).filter((s) => s === stepId).length;

  it('a step the session never appended runs nothing and leaves nothing in the saga', async () => {
    const turn = await openTurn();
    await firstStep(turn);
    const forged = await take(turn, {
      stepId: 'forged-1',
      actionId: 'draft',
      agentDid: alpha,
      digest: 'ab'.repeat(32),
    });
    assert.equal(forged.state, 'not-run');
    assert.equal(forged.ok, false);
    assert.match(forged.error ?? '', /forged-1 .*was not run/);
    assert.deepEqual(handlerCalls(turn.workflowId), ['step-1'], 'nothing else ran');
    const snap = await turn.saga.state();
    assert.deepEqual(
      snap.saga.steps.map((s) => s.stepId),
      ['step-1'],
      'the saga keeps nothing of it',
    );
    // The turn goes on: the agent's next step runs.
    assert.equal((await turn.append({ actionId: 'draft' })).ok, true);
    await turn.end();
    assert.equal((await turn.result()).saga.state, 'completed');
  });

  it("a step brought with another input or other retries does not run; the agent's own runs once, however often brought", async () => {
    const turn = await openTurn();
    await firstStep(turn);
    const appended = await session.send('appendStep', {
      sagaId: turn.sagaId,
      agentDid: alpha,
      actionId: 'draft',
      input: { amount: 1 },
    });
    assert.ok(appended.direct, 'a step the gate allows when appended is a direct step');
    // An outsider claims it first: a direct step was leased when appended, and the claim changes nothing.
    await raw.update('claimStep', { sagaId: turn.sagaId, stepId: appended.stepId, digest: appended.digest });
    const tampered = await take(turn, { ...appended.direct, input: { amount: 1000 } });
    assert.equal(tampered.state, 'not-run');
    assert.match(tampered.error ?? '', /input is not what was appended/);
    assert.equal(times(turn, appended.stepId), 0, 'the tampered step did not run');
    const own = await take(turn, appended.direct);
    assert.equal(own.state, 'committed', String(own.error));
    const retries = await take(turn, { ...appended.direct, retry: { ...appended.direct.retry, maximumAttempts: 5 } });
    assert.deepEqual(retries, own, 'brought again, it answers what the step came to');
    assert.deepEqual(await take(turn, appended.direct), own);
    assert.equal(times(turn, appended.stepId), 1, 'it ran once');
    const snap = await turn.saga.state();
    assert.equal(snap.digests[appended.stepId], appended.digest, "the step that ran is the session's");
    await turn.end();
    const done = await turn.result();
    assert.equal(done.saga.state, 'completed');
  });

  it('a step of an aborted turn is never run, whoever brings it', async () => {
    const turn = await openTurn();
    await firstStep(turn);
    const appended = await session.send('appendStep', { sagaId: turn.sagaId, agentDid: alpha, actionId: 'draft' });
    await turn.abort('the model gave up');
    const late = await take(turn, appended.direct).catch((e: Error) => e);
    // Refused (the turn is over), not run, or denied by the session's gate when it would start.
    if (!(late instanceof Error)) assert.notEqual(late.state, 'committed');
    const snap = await turn.result();
    assert.equal(snap.saga.state, 'compensated');
    assert.equal(times(turn, appended.stepId), 0, 'it never ran');
  });

  it("another agent's step, a malformed one, or one brought to a declared saga is refused before it is recorded", async () => {
    const turn = await openTurn();
    await firstStep(turn);
    const before = (await history(client, turn.workflowId)).length;
    const refused = [
      { stepId: 'x-1', actionId: 'draft', agentDid: beta, digest: 'ab'.repeat(32) },
      { stepId: 'x-2', actionId: 'draft', agentDid: alpha },
      { stepId: 'x-3', actionId: 'draft', agentDid: alpha, digest: 'ab'.repeat(32), extra: 1 },
    ];
    for (const step of refused) await assert.rejects(take(turn, step));
    const declared = await session.startSaga({ steps: [{ actionId: 'draft', agentDid: alpha }] });
    touched.push(declared.handle.workflowId);
    await assert.rejects(
      declared.handle.executeUpdate('takeStep', {
        args: [{ stepId: 'y-1', actionId: 'draft', agentDid: alpha, digest: 'ab'.repeat(32) }],
      }),
    );
    await until(
      () => history(client, turn.workflowId),
      (events) => events.length === before,
      'the refusals to leave no history',
    );
    assert.equal((await history(client, turn.workflowId)).length, before);
    await turn.end();
    await turn.result();
  });
});
