/**
 * Attacks 1 and 2: pushes with no authority (SPEC §11.2–§11.3).
 *
 * A signal carries no sender: anyone can send `restrict` (or the removed
 * `ringView`) to a saga, or `sagaEnded` (or the removed `sagaStarted`,
 * `sagaEvent`, `sagaEscalated`) to a session, and anyone can start a
 * `sagaWorkflow` with a view of their making. None of it may raise privilege,
 * count evidence, mark a step or saga done, or record anything.
 */
import assert from 'node:assert/strict';
import {
  ATTACKER,
  SRE,
  continueAsNew,
  eventName,
  eventsSince,
  executedSteps,
  expectNoTrace,
  expectSoundAudit,
  freshSagaCompletes,
  handlerCalls,
  httpTool,
  mark,
  openSession,
  rawClient,
  refusal,
  sagaOutcome,
  sagaWorkflowId,
  stepDigest,
  until,
  workflowTaskFailures,
  ACTIONS,
  type HttpTool,
} from './raw';
import { SAGA_START_FORMAT } from '../../src/core/sagaStart';

const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';
const gamma = 'did:mesh:gamma';
const sandbox = 'did:mesh:sandbox';

/** Everything a view may hold, at its most privileged. */
const raised = (did: string) => ({ did, sigmaRaw: 1, bondSum: 1, ringCap: 0, active: true });

/** Signals a saga received so far, by name. */
async function signalsReceived(workflowId: string, name: string): Promise<number> {
  const { client } = await rawClient();
  const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  return events.filter((e) => e.workflowExecutionSignaledEventAttributes?.signalName === name).length;
}

/**
 * A workflow's latest run is at rest: its last workflow task completed, every activity it scheduled has closed
 * and every signal it sent has been delivered (or failed) — so what it was given has been handled, and what it
 * sent has reached its target's history. Only a timer or a new request can give it another task.
 */
async function atRest(workflowId: string): Promise<boolean> {
  const { client } = await rawClient();
  const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  const open = new Set<string>();
  for (const e of events) {
    const id = String(e.eventId);
    if (e.activityTaskScheduledEventAttributes || e.signalExternalWorkflowExecutionInitiatedEventAttributes)
      open.add(id);
    const closes =
      e.activityTaskCompletedEventAttributes ??
      e.activityTaskFailedEventAttributes ??
      e.activityTaskTimedOutEventAttributes ??
      e.activityTaskCanceledEventAttributes;
    if (closes) open.delete(String(closes.scheduledEventId));
    const signalled =
      e.externalWorkflowExecutionSignaledEventAttributes ?? e.signalExternalWorkflowExecutionFailedEventAttributes;
    if (signalled) open.delete(String(signalled.initiatedEventId));
  }
  const lastTask = events.filter((e) => eventName(e).startsWith('EVENT_TYPE_WORKFLOW_TASK_')).at(-1);
  return open.size === 0 && lastTask !== undefined && eventName(lastTask) === 'EVENT_TYPE_WORKFLOW_TASK_COMPLETED';
}

describe('adversarial: pushes only take away (SPEC §11.3)', function () {
  this.timeout(180_000);
  let tool: HttpTool;
  const touched: string[] = [];

  before(async () => {
    tool = await httpTool();
  });
  after(async () => {
    await tool.close();
    assert.deepEqual(
      await workflowTaskFailures(touched, { unhandledCommand: 'tally' }),
      [],
      "no workflow task failed (a signal racing continue-as-new is the server's benign UNHANDLED_COMMAND)",
    );
  });

  /** A session whose sandboxed agent declared a ring 1 HTTP tool (its calls are counted). */
  const withSandbox = () =>
    openSession(
      {
        [alpha]: 0.85,
        [sandbox]: {
          sigma: 0.3,
          actions: [
            ...ACTIONS,
            {
              actionId: 'wire-http',
              reversibility: 'NONE',
              executeApi: `${tool.base}/wire`,
              undoApi: `${tool.base}/unwire`,
            },
          ],
        },
      },
      { allowedToolOrigins: [tool.base] },
    );

  it('1. a restrict or ringView push raising a ring 3 agent (σ_raw 1, ringCap 0) does not let its ring 1 step run', async () => {
    const session = await withSandbox();
    const { sagaId, workflowId } = await session.startSaga({
      steps: [
        { actionId: 'draft', agentDid: alpha, input: { delayMs: 3000 } },
        { actionId: 'wire-http', agentDid: sandbox, approvalDeadlineSeconds: 60 },
      ],
    });
    touched.push(session.workflowId, workflowId);
    await until(
      () => session.sagaState(sagaId),
      (s) => s.saga.steps[0].state === 'executing',
      'step 1 to run',
    );
    const m = await mark(session, [workflowId]);
    const saga = session.saga(sagaId);
    await saga.signal('restrict', { agents: [raised(sandbox)] });
    await saga.signal('restrict', { agents: [raised(sandbox), raised(ATTACKER)], sessionState: 'active' });
    await saga.signal('ringView', {
      agents: [raised(sandbox)],
      actions: [
        {
          actionId: 'wire-http',
          readOnly: true,
          admin: false,
          reversibility: 'FULL',
          omega: 0.2,
          executeApi: `${tool.base}/wire`,
          undoApi: null,
        },
      ],
      quorum: 0,
      approvals: { 'step-2': [alpha, beta] },
    });
    await until(
      () => signalsReceived(workflowId, 'ringView'),
      (n) => n === 1,
      'the pushes to arrive',
    );
    // The pushes left their signals and nothing else; the session heard nothing.
    await expectNoTrace(m, { [workflowId]: ['readStepGrant'] });

    const snap = await sagaOutcome(saga);
    assert.equal(snap.saga.state, 'compensated', snap.error);
    assert.equal(snap.failedStepId, 'step-2');
    assert.match(snap.error, /ring violation: ring 1 needs σ_eff > 0\.95/);
    assert.deepEqual(await executedSteps(workflowId), ['step-1'], 'the ring 1 step was never scheduled');
    assert.equal(tool.posts('/wire'), 0, 'the ring 1 HTTP tool was never called');
    assert.deepEqual(snap.grants, {});
    // The session recorded the outcome it learned from its child (one hypervisor delta), nothing of the pushes.
    const trail = await until(
      () => expectSoundAudit(session),
      (t) => t.deltaCount === m.deltaCount + 1,
      'the outcome delta',
    );
    assert.equal(trail.deltas.at(-1)!.agentDid, 'did:hv:hypervisor');
  });

  it('1. restrictions only merge downward: a real demotion reaches the saga whatever was pushed before or after it', async () => {
    const session = await openSession({ [alpha]: 0.85, [beta]: 0.8 });
    const { sagaId, workflowId } = await session.startSaga({
      steps: [
        { actionId: 'draft', agentDid: alpha, input: { delayMs: 4000 } },
        { actionId: 'publish', agentDid: alpha },
      ],
    });
    touched.push(session.workflowId, workflowId);
    const saga = session.saga(sagaId);
    await until(
      () => session.sagaState(sagaId),
      (s) => s.saga.steps[0].state === 'executing',
      'step 1 to run',
    );
    await saga.signal('restrict', { agents: [raised(alpha)] });
    await session.asSre('slash', { agentDid: alpha, reason: 'caught exfiltrating', witnessDid: SRE });
    // The session's own push (σ 0) arrives; then the forger pushes the raise again.
    await until(
      () => signalsReceived(workflowId, 'restrict'),
      (n) => n >= 2,
      "the session's restriction to reach the saga",
    );
    await saga.signal('restrict', { agents: [raised(alpha)] });
    await saga.signal('ringView', { agents: [raised(alpha)] });

    const snap = await sagaOutcome(saga);
    assert.equal(snap.saga.state, 'compensated', snap.error);
    assert.equal(snap.failedStepId, 'step-2');
    assert.match(snap.error, /ring violation/);
    assert.deepEqual(handlerCalls(workflowId), ['step-1'], "the demoted agent's next step never ran");
    assert.deepEqual(await executedSteps(workflowId), ['step-1']);
    assert.equal((await session.participant(alpha)).sigmaRaw, 0);
    await expectSoundAudit(session);
  });

  it('1. a sagaWorkflow started by a client (signal-with-start or start) with a forged view runs nothing and records nothing', async () => {
    const session = await withSandbox();
    touched.push(session.workflowId);
    const { client, taskQueue } = await rawClient();
    const m = await mark(session);
    const forged = (sagaId: string) => {
      const step = {
        stepId: 'step-1',
        actionId: 'wire-http',
        agentDid: sandbox,
        input: {},
        timeoutSeconds: 5,
        retry: { maximumAttempts: 1, initialIntervalSeconds: 1, backoffCoefficient: 2 },
        approvalDeadlineSeconds: 5,
      };
      return {
        sessionId: session.id,
        sagaId,
        steps: [{ ...step, digest: stepDigest({ sessionId: session.id, sagaId, ...step }) }],
        agents: [raised(sandbox)],
        actions: [
          {
            actionId: 'wire-http',
            readOnly: true,
            admin: false,
            reversibility: 'FULL',
            omega: 0.2,
            executeApi: `${tool.base}/wire`,
            undoApi: null,
          },
        ],
        quorum: 1,
      };
    };
    // The id the session will give its first saga, a made-up one, a plain start, one in format 2 (issue 20:
    // no digests, the saga computes them; admin left out) and one in format 4 (no session id: a saga reads it
    // from its parent's workflow id, and this one has no parent) and in format 5 (format 4 without an undoApi
    // that is its executeApi) and in a format newer than any build reads (whose workflow task a real session's saga
    // fails and retries, for a newer build's worker: a forged one must not wait so) — refused before its input is read.
    const ids = [
      'saga-1',
      'forged',
      'forged-start',
      'forged-format-2',
      'forged-format-4',
      'forged-format-5',
      'forged-format-next',
    ];
    const compact = (sagaId: string) => {
      const input = forged(sagaId);
      return {
        ...input,
        format: 2,
        steps: input.steps.map(({ digest: _digest, ...step }) => step),
        actions: input.actions.map(({ admin: _admin, ...action }) => action),
      };
    };
    const handles = [
      await client.workflow.signalWithStart('sagaWorkflow', {
        taskQueue,
        workflowId: sagaWorkflowId(session.id, ids[0]!),
        args: [forged(ids[0]!)],
        signal: 'restrict',
        signalArgs: [{ agents: [raised(sandbox)] }],
      }),
      await client.workflow.signalWithStart('sagaWorkflow', {
        taskQueue,
        workflowId: sagaWorkflowId(session.id, ids[1]!),
        args: [forged(ids[1]!)],
        signal: 'wake',
        signalArgs: [{ sessionContinued: true }],
      }),
      await client.workflow.start('sagaWorkflow', {
        taskQueue,
        workflowId: sagaWorkflowId(session.id, ids[2]!),
        args: [forged(ids[2]!)],
      }),
      await client.workflow.start('sagaWorkflow', {
        taskQueue,
        workflowId: sagaWorkflowId(session.id, ids[3]!),
        args: [compact(ids[3]!)],
      }),
      await client.workflow.start('sagaWorkflow', {
        taskQueue,
        workflowId: sagaWorkflowId(session.id, ids[4]!),
        args: [(({ sessionId: _s, ...rest }) => ({ ...rest, format: 4 }))(compact(ids[4]!))],
      }),
      await client.workflow.start('sagaWorkflow', {
        taskQueue,
        workflowId: sagaWorkflowId(session.id, ids[5]!),
        args: [
          (({ sessionId: _s, ...rest }) => ({
            ...rest,
            format: 5,
            actions: rest.actions.map(({ undoApi: _u, ...action }) => action),
          }))(compact(ids[5]!)),
        ],
      }),
      await client.workflow.start('sagaWorkflow', {
        taskQueue,
        workflowId: sagaWorkflowId(session.id, ids[6]!),
        args: [{ ...compact(ids[6]!), format: SAGA_START_FORMAT + 1 }],
      }),
    ];
    for (const h of handles) {
      touched.push(h.workflowId);
      const failure = await refusal(h.result());
      assert.equal(failure.type, 'SAGA_NOT_STARTED_BY_SESSION', failure.message);
      assert.match(failure.message, /startSaga/);
      assert.deepEqual(await executedSteps(h.workflowId), [], `${h.workflowId} scheduled no step`);
      // It did not tell the session anything either (no sagaEnded from a saga that was never its child).
      assert.ok(
        !(await eventsSince(h.workflowId, 0)).includes('EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED'),
      );
    }
    // Only a step's activities call a tool (an undo only after its step ran): each forged saga closed (its
    // history is final) having scheduled no step, so no call can still come and the count below is final.
    assert.equal(tool.posts(), 0, "the forged view's HTTP tool was never called");
    await expectNoTrace(m);
    assert.deepEqual(await session.sagaRecords(), []);

    // The session still starts its own saga under the id the forger used, and it runs from the session's view.
    const real = await session.startSaga({ steps: [{ actionId: 'draft', agentDid: alpha }] });
    assert.equal(real.sagaId, 'saga-1');
    touched.push(real.workflowId);
    const snap = await sagaOutcome(session.saga(real.sagaId));
    assert.equal(snap.saga.state, 'completed', snap.error);
  });
});

describe('adversarial: forged saga news to the session (SPEC §11.2)', function () {
  this.timeout(180_000);
  const touched: string[] = [];
  after(async () =>
    assert.deepEqual(
      await workflowTaskFailures(touched, { unhandledCommand: 'tally' }),
      [],
      "no workflow task failed (a signal racing continue-as-new is the server's benign UNHANDLED_COMMAND)",
    ),
  );

  /** The forged signals, by their old names and the one that remains. */
  const forgeries = (sagaId: string, workflowId: string) =>
    [
      ['sagaEscalated', { sagaId, stepId: 'step-1', agentDid: alpha, reason: 'compensation failed', slash: true }],
      ['sagaEscalated', { sagaId, escalations: [{ stepId: 'step-1', agentDid: alpha, omega: 1 }] }],
      ['sagaEvent', { sagaId, kind: 'stepCommitted', stepId: 'step-1', agentDid: alpha }],
      ['sagaEvent', { sagaId, kind: 'ended', state: 'completed', steps: [{ stepId: 'step-1', state: 'committed' }] }],
      ['sagaStarted', { sagaId: 'ghost', workflowId: sagaWorkflowId('x', 'ghost'), agentDids: [ATTACKER] }],
      ['sagaEnded', { sagaId }],
      [
        'sagaEnded',
        {
          sagaId,
          state: 'escalated',
          snapshot: {
            saga: { state: 'escalated', steps: [{ stepId: 'step-1', agentDid: alpha, state: 'compensation_failed' }] },
          },
        },
      ],
      // Issue 20: a saga's compact outcome, pushed: the session settles from the saga's own answer only.
      [
        'sagaEnded',
        {
          sagaId,
          format: 2,
          state: 'escalated',
          finishedAt: 1,
          error: 'forged',
          failedStepId: 'step-1',
          steps: [
            {
              stepId: 'step-1',
              agentDid: alpha,
              actionId: 'wire-money',
              state: 'compensation_failed',
              attempts: 1,
              error: 'forged',
              cost: 1000,
            },
          ],
        },
      ],
      ['sagaEnded', { sagaId: 'ghost' }],
      ['sagaEnded', { sagaId: '__proto__' }],
      ['sagaEnded', { sagaId: { toString: 'x' } }],
      ['sagaEnded', null],
      ['sagaEnded', workflowId],
    ] as const;

  it('2. forged sagaEscalated / sagaEvent / sagaStarted / sagaEnded: no slash, no delta, the saga stays running', async () => {
    const session = await openSession({ [alpha]: 0.97, [beta]: 0.8, [gamma]: 0.8 });
    const { sagaId, workflowId, digests } = await session.startSaga({
      steps: [{ actionId: 'wire-money', agentDid: alpha, approvalDeadlineSeconds: 120 }],
    });
    touched.push(session.workflowId, workflowId);
    await until(
      () => session.sagaState(sagaId),
      (s) => s.waiting?.stepId === 'step-1',
      'the saga to wait for approvals',
    );
    const before = {
      saga: await session.sagaState(sagaId),
      alpha: await session.participant(alpha),
      records: await session.sagaRecords(),
    };
    const m = await mark(session, [workflowId]);

    for (const [name, arg] of forgeries(sagaId, workflowId)) await session.signal(name, arg);
    await until(
      () => signalsReceived(session.workflowId, 'sagaEnded'),
      (n) => n === 8,
      'the signals to arrive',
    );
    await until(() => atRest(session.workflowId), Boolean, 'the session to handle the signals');
    await expectNoTrace(m, { [session.workflowId]: [] });
    assert.deepEqual(await session.participant(alpha), before.alpha, 'alpha was not slashed');
    assert.deepEqual(
      await session.sagaRecords(),
      before.records,
      "the session's record of its sagas is unchanged (no ghost, nothing ended)",
    );
    assert.deepEqual(await session.sagaState(sagaId), before.saga, 'the saga is unchanged');

    // It still completes on real approvals, and the session learns that from its child.
    for (const approverDid of [beta, gamma])
      await session.update('approve', { sagaId, stepId: 'step-1', digest: digests['step-1'], approverDid });
    assert.equal((await sagaOutcome(session.saga(sagaId))).saga.state, 'completed');
    await until(
      () => session.sagaRecords(),
      (r) => r[0]?.state === 'completed',
      'the session to learn the outcome',
    );
    await expectSoundAudit(session);
  });

  it('2. sagaEnded for a running saga after the session continued as new: read by id, not believed', async () => {
    const session = await openSession({ [alpha]: 0.97, [beta]: 0.8, [gamma]: 0.8 }, {}, { maxUpdatesPerRun: 10 });
    const { sagaId, workflowId, digests } = await session.startSaga({
      steps: [{ actionId: 'wire-money', agentDid: alpha, approvalDeadlineSeconds: 120 }],
    });
    touched.push(session.workflowId, workflowId);
    await until(
      () => session.sagaState(sagaId),
      (s) => s.waiting?.stepId === 'step-1',
      'the saga to wait for approvals',
    );
    await continueAsNew(session, beta);
    // The new run has started and told its saga (a wake-up the saga handled): nothing of the hand-over comes later.
    await until(
      async () => (await atRest(session.workflowId)) && (await atRest(workflowId)),
      Boolean,
      'the new run and its saga to be at rest',
    );
    const m = await mark(session, [workflowId]);
    const before = await session.sagaRecords();
    assert.equal(before.find((s) => s.sagaId === sagaId)?.state, 'running');

    for (const [name, arg] of forgeries(sagaId, workflowId)) await session.signal(name, arg);
    await until(
      () => signalsReceived(session.workflowId, 'sagaEnded'),
      (n) => n === 8,
      'the signals to arrive',
    );
    await until(() => atRest(session.workflowId), Boolean, 'the session to handle the signals');
    // The wake-up made the session read the saga by id (an activity); it is running, so nothing changed.
    await expectNoTrace(m, { [session.workflowId]: ['readSagaOutcome'] });
    assert.deepEqual(await session.sagaRecords(), before);
    assert.equal((await session.sagaState(sagaId)).saga.state, 'running');

    for (const approverDid of [beta, gamma])
      await session.update('approve', { sagaId, stepId: 'step-1', digest: digests['step-1'], approverDid });
    assert.equal((await sagaOutcome(session.saga(sagaId))).saga.state, 'completed');
    await until(
      () => session.sagaRecords(),
      (r) => r.find((s) => s.sagaId === sagaId)?.state === 'completed',
      'the new run to learn the outcome',
    );
    await expectSoundAudit(session);
  });

  it('afterwards the same worker runs a fresh saga to completion', async () => {
    await freshSagaCompletes();
  });
});
