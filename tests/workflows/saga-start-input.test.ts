/**
 * A saga's start input, format 5 (issue 20; format 2 plus what the saga derives left out): the session starts
 * its saga with the steps as requested, no digests, no default step ids or omegas, no session id (the saga
 * reads it from its parent's workflow id), no undoApi that is its executeApi; the saga computes each
 * digest with the session's own stepDigest. Approvals bind to the digests the
 * session recorded and answered (SPEC §11.5), so what the saga computes must be exactly those: for plain
 * steps, a parallel group's branches (g1.b2), a fork's steps under the fork's id and a turn's steps.
 */
import assert from 'node:assert/strict';
import { defaultPayloadConverter } from '@temporalio/common';
import { stepDigest } from '../../src/core/sagaContract';
import type { SessionHandle } from '../../src/client';
import { eventually, hypervisor } from '../helpers/hv';
import { activeSession } from '../helpers/sessions';
import { history, rawClient, until, workflowTaskFailures } from '../adversarial/raw';

const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';
const gamma = 'did:mesh:gamma';

/** The start input its session gave the saga, as its history holds it. */
async function startInput(workflowId: string): Promise<any> {
  const { client } = await rawClient();
  const started = (await history(client, workflowId))[0]!.workflowExecutionStartedEventAttributes!;
  return defaultPayloadConverter.fromPayload(started.input!.payloads![0]! as never);
}

/** Each step's digest as the session computes it (SPEC §11.5). */
const digestsOf = (
  session: SessionHandle,
  sagaId: string,
  steps: { stepId: string; actionId: string; agentDid: string; input?: unknown }[],
) =>
  Object.fromEntries(
    steps.map((s) => [s.stepId, stepDigest({ sessionId: session.sessionId, sagaId, ...s, input: s.input })]),
  );

describe('the saga start input, format 5 (issue 20)', function () {
  this.timeout(180_000);
  const touched: string[] = [];
  after(async () => {
    assert.deepEqual(await workflowTaskFailures(touched), [], 'no workflow task failed');
  });

  it("a saga's digests — its steps, a group's branches (g1.b2), custom ids — are the session's: approvals bound to them let its ring-1 branch run", async () => {
    const session = await activeSession({ [alpha]: 0.97, [beta]: 0.8, [gamma]: 0.8 });
    touched.push(session.handle.workflowId);
    const saga = await session.startSaga({
      steps: [
        { actionId: 'draft', agentDid: alpha, input: { n: 1, nested: { é: [1, null, 'x'] } } },
        {
          parallel: [
            { actionId: 'draft', agentDid: beta },
            { actionId: 'wire-money', agentDid: alpha, input: { amount: 5 }, approvalDeadlineSeconds: 120 },
          ],
          policy: 'ALL',
        },
        { stepId: 'last', actionId: 'publish', agentDid: beta, timeoutSeconds: 30, retry: { maximumAttempts: 2 } },
      ],
    });
    touched.push(saga.handle.workflowId);
    const expected = digestsOf(session, saga.sagaId, [
      { stepId: 'step-1', actionId: 'draft', agentDid: alpha, input: { n: 1, nested: { é: [1, null, 'x'] } } },
      { stepId: 'g1.b1', actionId: 'draft', agentDid: beta },
      { stepId: 'g1.b2', actionId: 'wire-money', agentDid: alpha, input: { amount: 5 } },
      { stepId: 'last', actionId: 'publish', agentDid: beta },
    ]);
    assert.deepEqual(saga.digests, expected, 'startSaga answers the digests the session recorded');

    const input = await startInput(saga.handle.workflowId);
    assert.equal(input.format, 5);
    assert.equal(input.sessionId, undefined, "the saga reads it from its parent's workflow id");
    assert.deepEqual(
      input.steps,
      [
        { actionId: 'draft', agentDid: alpha, input: { n: 1, nested: { é: [1, null, 'x'] } } },
        { stepId: 'g1.b1', actionId: 'draft', agentDid: beta },
        {
          stepId: 'g1.b2',
          actionId: 'wire-money',
          agentDid: alpha,
          input: { amount: 5 },
          approvalDeadlineSeconds: 120,
        },
        { stepId: 'last', actionId: 'publish', agentDid: beta, timeoutSeconds: 30, retry: { maximumAttempts: 2 } },
      ],
      'steps as requested: no digest, no default (a default step id neither), every lease held',
    );
    assert.ok(
      input.actions.every((a: { omega?: number }) => a.omega === undefined),
      'every action at its reversibility’s default omega: left out',
    );
    assert.ok(
      input.actions.every((a: { executeApi: string; undoApi?: string }) => a.undoApi === undefined),
      'every undoApi its executeApi (test.step does and undoes): left out',
    );

    const waiting = await eventually(
      () => saga.state(),
      (s) => s.waiting?.stepId === 'g1.b2',
      'the ring-1 branch to wait for approvals',
    );
    assert.deepEqual(waiting.digests, expected, 'the saga holds the digests the session answered');
    for (const approverDid of [beta, gamma])
      await session.approve({ sagaId: saga.sagaId, stepId: 'g1.b2', digest: expected['g1.b2'], approverDid });
    const done = await saga.result();
    assert.equal(done.saga.state, 'completed', String(done.error));
    assert.deepEqual(done.grants['g1.b2']!.approvals, [beta, gamma], "the session's grant for the saga's digest");
    assert.deepEqual(done.digests, expected);
    assert.deepEqual(
      done.saga.steps.map((s) => [s.stepId, s.timeoutSeconds, s.maxRetries]),
      [
        ['step-1', 300, 0],
        ['g1.b1', 300, 0],
        ['g1.b2', 300, 0],
        ['last', 30, 1],
      ],
      'the defaults the session left out, put back',
    );
  });

  it("a fork, read from its original's format-5 input, runs under the digests the session answered for it", async () => {
    const session = await activeSession();
    touched.push(session.handle.workflowId);
    const steps = [
      { actionId: 'draft', agentDid: alpha },
      { actionId: 'publish', agentDid: beta, input: { failAttempts: -1 }, retry: { maximumAttempts: 2 } },
    ];
    const original = await session.startSaga({ sagaId: 'original', steps });
    touched.push(original.handle.workflowId);
    assert.equal((await original.result()).saga.state, 'compensated');
    await until(
      () => session.sagas(),
      (rs) => rs.find((r) => r.sagaId === 'original')?.state === 'compensated',
      'the session to learn the outcome (it forks on what it has learned)',
    );
    const forked = await session.forkSaga({ sagaId: 'original', fromStepId: 'step-2', newSagaId: 'forked' });
    touched.push(forked.handle.workflowId);
    const expected = digestsOf(session, 'forked', [{ stepId: 'step-2', ...steps[1]! }]);
    assert.deepEqual(forked.digests, expected);
    assert.notEqual(expected['step-2'], original.digests['step-2']);
    const input = await startInput(forked.handle.workflowId);
    assert.deepEqual(input.steps, [{ stepId: 'step-2', ...steps[1]! }], 'the retry as the original was given it');
    const snap = await forked.result();
    assert.equal(snap.saga.state, 'compensated', 'the same failing step, run again as declared');
    assert.equal(snap.saga.steps[0]!.attempts, 2, 'with its retry');
    assert.deepEqual(snap.digests, expected);
  });

  it("a turn's appended steps hold the digests the session gave them", async () => {
    const session = await activeSession();
    touched.push(session.handle.workflowId);
    const turn = await session.openTurn({ agentDid: alpha });
    touched.push(turn.workflowId);
    const answers = [
      await turn.append({ actionId: 'draft' }),
      await turn.append({ actionId: 'publish', input: { k: 2 } }),
    ];
    await turn.end();
    const snap = await turn.result();
    assert.equal(snap.saga.state, 'completed', String(snap.error));
    const expected = digestsOf(session, turn.sagaId, [
      { stepId: 'step-1', actionId: 'draft', agentDid: alpha },
      { stepId: 'step-2', actionId: 'publish', agentDid: alpha, input: { k: 2 } },
    ]);
    assert.deepEqual(Object.fromEntries(answers.map((a) => [a.stepId, a.digest])), expected);
    assert.deepEqual(snap.digests, expected);
    const input = await startInput(turn.workflowId);
    assert.deepEqual([input.format, input.steps], [5, []]);
    const { client } = await rawClient();
    const summary = await (await client.workflow.getHandle(turn.workflowId).describe()).staticSummary();
    assert.equal(
      summary,
      `Turn of ${alpha}, saga ${turn.sagaId} of session ${session.sessionId}`,
      'whose turn it is: what its workflow id does not say',
    );
  });

  it('no static details and a summary only of what its workflow id does not say (both written twice to history): the current details show the steps with their states', async () => {
    const hv = await hypervisor();
    const session = await activeSession();
    touched.push(session.handle.workflowId);
    const saga = await session.startSaga({ steps: [{ actionId: 'draft', agentDid: alpha }] });
    touched.push(saga.handle.workflowId);
    await saga.result();
    const handle = hv.client.workflow.getHandle(saga.handle.workflowId);
    const described = await handle.describe();
    assert.equal(await described.staticDetails(), undefined);
    assert.equal(await described.staticSummary(), undefined, `its workflow id says it: ${saga.handle.workflowId}`);
    const described2 = await session.startSaga({
      description: 'quarterly report',
      steps: [{ actionId: 'draft', agentDid: alpha }],
    });
    touched.push(described2.handle.workflowId);
    await described2.result();
    const withDescription = await hv.client.workflow.getHandle(described2.handle.workflowId).describe();
    assert.equal(
      await withDescription.staticSummary(),
      `Saga ${described2.sagaId} of session ${session.sessionId}: quarterly report`,
    );
    const metadata = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
    assert.match(
      metadata.currentDetails ?? '',
      new RegExp(`\\| step-1 \\| draft \\| ${alpha} \\| committed \\| 1 \\|`),
    );
  });
});
