/**
 * N7 (issue 24): a saga terminated by a client ended "lost": its steps were
 * neither charged, recorded, compensated nor reported — an agent ran two
 * steps, terminated its own saga (any plain Temporal client can), and ran two
 * more within a two-call budget. A terminated (or timed-out) saga is a failure
 * of unknown outcome (SPEC §6, §11.10): the session reads the closed run's
 * history, undoes in reverse the steps that may have acted under the saga's
 * own idempotency keys, charges them, records and reports the outcome.
 *
 * The tool here honours the Idempotency-Key as a real one would: an effect is
 * done once per key, however often it is asked.
 */
import assert from 'node:assert/strict';
import { registerStepHandler } from '../../activities/handlers';
import { ACTIONS, expectSoundAudit, openSession, rawClient, refused, until, workflowTaskFailures } from './raw';

const alpha = 'did:mesh:alpha';

interface ToolCall {
  workflowId: string;
  stepId: string;
  phase: 'execute' | 'undo';
  key: string;
}
/** Every call the tool received, and the effects it did (one per idempotency key). */
const toolCalls: ToolCall[] = [];
const effects = new Map<string, number>();
/** Keys whose slow call already began: a repeat of the key answers at once. */
const slowed = new Set<string>();

interface ToolInput {
  /** The execute sleeps this long first. */
  delayMs?: number;
  /** The undo's first call sleeps this long (the saga is terminated meanwhile). */
  undoDelayMs?: number;
  /** The execute fails, answered, without acting. */
  fail?: boolean;
  /** The undo fails every time. */
  failUndo?: boolean;
}

function registerTool(): void {
  registerStepHandler('n7.tool', {
    async execute(input, ctx) {
      const opts = (input ?? {}) as ToolInput;
      toolCalls.push({ workflowId: ctx.workflowId, stepId: ctx.stepId, phase: 'execute', key: ctx.idempotencyKey });
      if (opts.fail) throw new Error('the tool refused it (nothing done)');
      if (!effects.has(ctx.idempotencyKey)) effects.set(ctx.idempotencyKey, 1);
      if (opts.delayMs) await ctx.activity.sleep(opts.delayMs);
      return { done: ctx.stepId };
    },
    async undo(input, _result, ctx) {
      const opts = (input ?? {}) as ToolInput;
      toolCalls.push({ workflowId: ctx.workflowId, stepId: ctx.stepId, phase: 'undo', key: ctx.idempotencyKey });
      if (opts.failUndo) throw new Error('the undo failed on purpose');
      if (!effects.has(ctx.idempotencyKey)) effects.set(ctx.idempotencyKey, 1);
      if (opts.undoDelayMs && !slowed.has(ctx.idempotencyKey)) {
        slowed.add(ctx.idempotencyKey);
        await ctx.activity.sleep(opts.undoDelayMs);
      }
      return { undone: ctx.stepId };
    },
  });
}

const TOOL = { reversibility: 'FULL', executeApi: 'handler:n7.tool', undoApi: 'handler:n7.tool' };
const TOOL_ACTIONS = [...ACTIONS, { actionId: 'n7-draft', ...TOOL }, { actionId: 'n7-publish', ...TOOL }];

const callsOf = (workflowId: string, phase: 'execute' | 'undo') =>
  toolCalls.filter((c) => c.key.startsWith(`${workflowId}/`) && c.phase === phase);
const effectsOf = (workflowId: string) =>
  Object.fromEntries([...effects].filter(([key]) => key.startsWith(`${workflowId}/`)));
const recordOf = async (session: { sagaRecords(): Promise<any[]> }, sagaId: string) =>
  (await session.sagaRecords()).find((g: { sagaId: string }) => g.sagaId === sagaId);

describe('N7 — a terminated saga ends in a known way', function () {
  this.timeout(180_000);
  const touched: string[] = [];
  before(registerTool);
  after(async () => assert.deepEqual(await workflowTaskFailures(touched), [], 'no workflow task failed'));

  it('N7: an agent terminates its own saga while step 2 runs: both steps are undone once each in reverse under the saga keys, charged and recorded; its two-call budget holds', async () => {
    const { client } = await rawClient();
    const session = await openSession(
      { [alpha]: { sigma: 0.85, actions: TOOL_ACTIONS } },
      { controls: { budgets: { agentCalls: 2 } } },
    );
    const saga = await session.startSaga({
      steps: [
        { actionId: 'n7-draft', agentDid: alpha },
        { actionId: 'n7-publish', agentDid: alpha, input: { delayMs: 60_000 } },
      ],
    });
    touched.push(session.workflowId, saga.workflowId);
    await until(
      async () => callsOf(saga.workflowId, 'execute').map((c) => c.stepId),
      (s) => s.length === 2,
      'both steps to act',
    );
    // The attacker's plain client: the saga's workflow id is in the startSaga answer.
    await client.workflow.getHandle(saga.workflowId).terminate('the agent ends its own saga');

    const settled = await until(
      () => recordOf(session, saga.sagaId),
      (r) => r?.state !== 'running',
      'the session to settle the saga',
    );
    assert.equal(settled.state, 'compensated', `not lost: ${settled.error}`);
    assert.match(settled.error, /terminated/);
    assert.deepEqual(
      callsOf(saga.workflowId, 'undo').map((c) => c.key),
      [`${saga.workflowId}/step-2/undo`, `${saga.workflowId}/step-1/undo`],
      'the steps that may have acted were undone in reverse, under the saga own idempotency keys',
    );
    assert.deepEqual(
      effectsOf(saga.workflowId),
      {
        [`${saga.workflowId}/step-1/execute`]: 1,
        [`${saga.workflowId}/step-2/execute`]: 1,
        [`${saga.workflowId}/step-1/undo`]: 1,
        [`${saga.workflowId}/step-2/undo`]: 1,
      },
      'each effect once',
    );

    const summary = await session.summary();
    const spent = summary.controls.spent.agents.find((a: { did: string }) => a.did === alpha);
    assert.equal(spent?.spent.calls, 2, `both steps were charged: ${JSON.stringify(summary.controls.spent)}`);
    await refused(session.startSaga({ steps: [{ actionId: 'n7-draft', agentDid: alpha }] }), 'BUDGET_EXHAUSTED');
    await refused(session.startSaga({ steps: [{ actionId: 'draft', agentDid: alpha }] }), 'BUDGET_EXHAUSTED');

    const { trail } = await session.audit();
    const changes = trail.deltas.flatMap((d) => d.changes);
    assert.equal(changes.filter((c) => c.path === `/sagas/${saga.sagaId}/state`).length, 1, 'the outcome is recorded');
    for (const stepId of ['step-1', 'step-2'])
      assert.ok(
        changes.some((c) => c.path === `/sagas/${saga.sagaId}/steps/${stepId}`),
        `${stepId} is recorded`,
      );
    assert.ok(
      changes.some((c) => c.path === `/budgets/${alpha}`),
      'the charge is in the trail',
    );
    await expectSoundAudit(session);
  });

  it('N7: a saga terminated while it compensates: the session does not redo an undo the saga did, finishes the one in flight under its key, and leaves the step that did not act alone', async () => {
    const { client } = await rawClient();
    const session = await openSession({ [alpha]: { sigma: 0.85, actions: TOOL_ACTIONS } });
    const saga = await session.startSaga({
      steps: [
        { actionId: 'n7-draft', agentDid: alpha, input: { undoDelayMs: 60_000 } },
        { actionId: 'n7-publish', agentDid: alpha },
        // Refused by the tool on its one attempt: known not to have acted; the saga walks back.
        { actionId: 'n7-publish', agentDid: alpha, input: { fail: true }, retry: { maximumAttempts: 1 } },
      ],
    });
    touched.push(session.workflowId, saga.workflowId);
    await until(
      async () => callsOf(saga.workflowId, 'undo').map((c) => c.stepId),
      (s) => s.includes('step-1'),
      "the saga's undo of step 1 to begin",
    );
    await client.workflow.getHandle(saga.workflowId).terminate('terminated while it compensates');

    const settled = await until(
      () => recordOf(session, saga.sagaId),
      (r) => r?.state !== 'running',
      'the session to settle the saga',
    );
    assert.equal(settled.state, 'compensated', `not lost: ${settled.error}`);
    const undos = callsOf(saga.workflowId, 'undo');
    assert.deepEqual(
      undos.filter((c) => c.stepId === 'step-2').length,
      1,
      'the undo the saga completed is not asked again',
    );
    assert.ok(
      undos.filter((c) => c.stepId === 'step-1').every((c) => c.key === `${saga.workflowId}/step-1/undo`),
      'step 1 is undone under the saga key',
    );
    assert.equal(
      undos.filter((c) => c.stepId === 'step-1').length,
      2,
      'the undo in flight when the saga ended is asked again by the session (the tool dedupes it by key)',
    );
    assert.deepEqual(
      effectsOf(saga.workflowId),
      {
        [`${saga.workflowId}/step-1/execute`]: 1,
        [`${saga.workflowId}/step-2/execute`]: 1,
        [`${saga.workflowId}/step-2/undo`]: 1,
        [`${saga.workflowId}/step-1/undo`]: 1,
      },
      'each effect once; step 3 never acted and is not undone',
    );
    await expectSoundAudit(session);
  });

  it('N7: a terminated saga whose undo fails escalates: the step is recorded compensation_failed and its agent slashed', async () => {
    const { client } = await rawClient();
    const session = await openSession({ [alpha]: { sigma: 0.85, actions: TOOL_ACTIONS } });
    const saga = await session.startSaga({
      steps: [{ actionId: 'n7-draft', agentDid: alpha, input: { delayMs: 60_000, failUndo: true } }],
    });
    touched.push(session.workflowId, saga.workflowId);
    await until(
      async () => callsOf(saga.workflowId, 'execute').length,
      (n) => n === 1,
      'the step to act',
    );
    await client.workflow.getHandle(saga.workflowId).terminate('the agent ends its own saga');

    const settled = await until(
      () => recordOf(session, saga.sagaId),
      (r) => r?.state !== 'running',
      'the session to settle the saga',
    );
    assert.equal(settled.state, 'escalated', `not lost: ${settled.error}`);
    assert.deepEqual(
      callsOf(saga.workflowId, 'undo').map((c) => c.key),
      [`${saga.workflowId}/step-1/undo`],
      'the session asked the undo under the saga key',
    );
    const slashed = await until(
      () => session.participant(alpha),
      (p) => p?.sigmaRaw === 0,
      'the session to slash alpha',
    );
    assert.equal(slashed.slashed, true);
    const { trail } = await session.audit();
    assert.ok(
      trail.deltas.flatMap((d) => d.changes).some((c) => c.path === `/sagas/${saga.sagaId}/steps/step-1`),
      'the step is recorded',
    );
    await expectSoundAudit(session);
  });
});
