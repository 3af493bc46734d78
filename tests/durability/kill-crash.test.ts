/**
 * Issue 13: a kill (SPEC §12) while the killed agent's HTTP tool step is in
 * flight — and the worker process SIGKILLed right after the kill returns.
 *
 * The kill returns once the saga holds it: its step in flight was asked to
 * cancel. The tool sees the request end (the step's fetch aborts on the
 * cancellation, or the process dies with it); the lost attempt times out on
 * its heartbeat (5 s) and, its cancellation requested, is not retried. The
 * new worker re-gates the step: the kill's substitute takes it and the
 * remaining steps over when it passes the gate, else the saga compensates.
 * No request by the killed agent reaches the tool after the kill's delta.
 * A baseline without the crash shows the cancellation itself (a heartbeat's
 * answer) aborting the HTTP request within the heartbeat timeout.
 *
 * The step's Idempotency-Key names the saga and step, not the agent: the
 * substitute's run of the step in flight is the same step to the tool, which
 * answers it with that step's one side effect instead of acting twice.
 */
import assert from 'node:assert/strict';
import { verifyTrail, type Delta } from '../../src/core/audit';
import type { SessionHandle } from '../../src/client';
import {
  Lab,
  SRE,
  activeSession,
  asSre,
  ofSagas,
  stepKey,
  toolStep,
  waitUntil,
  type HeldSaga,
  type StepTiming,
} from './harness';

const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';
/** σ 0.5: ring 3, which does not pass the gate for the ring-2 steps. */
const weak = 'did:mesh:weak';
/** Steps heartbeat every second with a 5 s heartbeat timeout (workflows/saga/context.ts). */
const HEARTBEAT_TIMEOUT_MS = 5_000;
/** Retries allowed: a retry of the lost attempt as the killed agent would be possible — and must not reach the tool. */
const timing: StepTiming = { timeoutSeconds: 60, retry: { maximumAttempts: 3, initialIntervalSeconds: 0.5 } };
/**
 * The killed agent's step in flight: a 15 s request to the tool, three times the heartbeat timeout within
 * which its abort must be seen after the kill returns (it is seen within a second), so it is still running
 * when the kill lands. Its substitute's run and its undo wait for it to end (one side effect per key).
 */
const slow = { delayMs: 15_000, undoDelayMs: 100 };
const quick = { delayMs: 100, undoDelayMs: 100 };

const killDeltaOf = async (session: SessionHandle, did: string): Promise<Delta> => {
  const deltas = (await session.audit()).trail.deltas.filter((d) =>
    d.changes.some((c) => c.path === `/controls/${did}`),
  );
  assert.equal(deltas.length, 1, `one kill delta for ${did}`);
  return deltas[0]!;
};

describe("durability: a kill while the killed agent's HTTP tool step runs, the worker SIGKILLed as it returns", function () {
  this.timeout(300_000);
  const lab = Lab.forSuite();

  /**
   * The kill(s), then at once (`crash`) the SIGKILL and a new worker; returns when the kills
   * returned and when the SIGKILL was sent (never, without a crash).
   */
  async function killThenCrash(
    kills: (() => Promise<unknown>)[],
    crash = true,
  ): Promise<{ killReturned: number; crashedAt: number }> {
    await Promise.all(kills.map((k) => k()));
    const killReturned = Date.now();
    if (!crash) return { killReturned, crashedAt: Infinity };
    const crashedAt = Date.now();
    assert.equal(await lab.killWorkers(), 1);
    await lab.startWorker();
    return { killReturned, crashedAt };
  }

  /**
   * The saga's history: the killed agent's attempt in flight ended — lost with
   * its worker (heartbeat timeout; its cancellation requested, so not retried)
   * or cancelled, if the cancellation reached the worker first — and no step
   * activity ran a second attempt: the lost step was not re-run as the killed agent.
   */
  function assertLostAttemptNotRetried(story: string) {
    assert.match(
      story,
      /executeStep \d+: (timed out, RETRY_STATE_CANCEL_REQUESTED: activity Heartbeat timeout|cancelled)/,
      story,
    );
    assert.doesNotMatch(story, /(executeStep|compensateStep) \d+: started attempt [2-9]/, story);
  }

  /** What the tool must have seen of the killed agent's step in flight and of every request after the kill's delta. */
  function assertKilledAgentStopped(
    saga: HeldSaga,
    inFlightKey: string,
    killed: string,
    killDelta: Delta,
    killReturned: number,
  ) {
    const { tool } = lab;
    // The tool saw the request end without an answer, within the heartbeat timeout of the kill's return.
    const aborts = tool.aborts.filter((a) => a.key === inFlightKey && a.agentDid === killed);
    assert.equal(aborts.length, 1, `the tool saw ${killed}'s request for ${inFlightKey} aborted`);
    assert.ok(
      aborts[0]!.at - killReturned <= HEARTBEAT_TIMEOUT_MS,
      `aborted ${aborts[0]!.at - killReturned} ms after the kill returned`,
    );
    // No request by the killed agent reached the tool after the kill's delta; its step in flight was not re-run as it.
    const executes = tool.arrivals.filter((a) => ofSagas([saga])(a.key) && a.key.endsWith('/execute'));
    const late = executes.filter((a) => a.agentDid === killed && a.at > killDelta.at);
    assert.deepEqual(
      late,
      [],
      `no step by ${killed} started after the kill's delta (${new Date(killDelta.at).toISOString()})`,
    );
    assert.equal(
      executes.filter((a) => a.key === inFlightKey && a.agentDid === killed).length,
      1,
      `${inFlightKey} asked once as ${killed}`,
    );
    return aborts[0]!;
  }

  /**
   * The hand-off. With `crash`, the worker is SIGKILLed as the kill returns: its attempt is lost.
   * Without, the cancellation itself (a heartbeat's answer) aborts the step's request to the tool.
   */
  async function handOff(sessionId: string, crash: boolean) {
    const { tool } = lab;
    const session = await activeSession(lab, sessionId, {
      agents: { [alpha]: 0.85, [beta]: 0.85 },
      config: { sreWitnesses: [SRE] },
    });
    const saga = await session.startSaga({
      sagaId: 'h',
      steps: [
        toolStep('draft', beta, quick, timing),
        toolStep('reserve', alpha, slow, timing),
        toolStep('publish', alpha, quick, timing),
      ],
    });
    const k = (stepId: string, phase: 'execute' | 'undo' = 'execute') => stepKey(saga, stepId, phase);
    await waitUntil(
      async () => tool.runningKeys(),
      (ks) => ks.includes(k('step-2')),
      "alpha's step-2 request in flight at the tool",
    );

    let kill: Awaited<ReturnType<SessionHandle['kill']>> | undefined;
    const { killReturned, crashedAt } = await killThenCrash(
      [
        async () => {
          kill = await asSre(lab, session).kill({
            agentDid: alpha,
            sreDid: SRE,
            reason: 'runaway',
            substituteDid: beta,
          });
        },
      ],
      crash,
    );
    assert.deepEqual(kill!.sagasHolding, ['h']);
    assert.deepEqual(
      kill!.handedOff.map((h) => [h.stepId, h.agentDid]),
      [
        ['step-2', beta],
        ['step-3', beta],
      ],
    );

    const result = await saga.result();
    assert.equal(
      result.saga.state,
      'completed',
      `saga: ${result.error}\n${await lab.activityStory(saga.handle.workflowId)}`,
    );
    assert.deepEqual(result.saga.commitOrder, ['step-1', 'step-2', 'step-3']);
    assert.deepEqual(
      result.saga.steps.map((s) => s.agentDid),
      [beta, beta, beta],
      'the remaining steps ran as the substitute',
    );
    assert.notEqual(result.digests['step-2'], saga.digests['step-2'], 'handed off under a new digest');

    const killDelta = await killDeltaOf(session, alpha);
    const abort = assertKilledAgentStopped(saga, k('step-2'), alpha, killDelta, killReturned);
    // The substitute asked for step 2 (the same step, so the same key) and for step 3; step 3 was never asked as alpha.
    assert.ok(
      tool.arrivals.some((a) => a.key === k('step-2') && a.agentDid === beta && a.at > killDelta.at),
      'beta ran step 2 after the kill',
    );
    assert.deepEqual(
      tool.arrivals.filter((a) => a.key === k('step-3')).map((a) => a.agentDid),
      [beta],
    );

    // One side effect per key: step 2's is the one alpha's request began; beta's run got its answer.
    tool.assertActed([k('step-1'), k('step-2'), k('step-3')], [result], ofSagas([saga]));
    assert.deepEqual(tool.doubleActs(), []);
    assert.deepEqual(tool.undosWithoutExecute(), []);

    const audit = await session.audit();
    assert.equal(audit.verification.ok, true);
    assert.equal(verifyTrail(audit.trail).ok, true);
    assert.equal((await session.verifyAudit()).verification.ok, true);
    assert.deepEqual(await lab.workflowTaskFailures([session.handle.workflowId, saga.handle.workflowId]), []);
    const story = await lab.activityStory(saga.handle.workflowId);
    assertLostAttemptNotRetried(story);
    // Without a crash the worker reported the cancellation: the HTTP request was aborted by it, not by a dying process.
    if (!crash) assert.match(story, /executeStep \d+: cancelled/, story);
    console.log(
      `    abort seen ${abort.at - killReturned} ms after the kill returned (${abort.at < crashedAt ? 'by the cancellation' : 'with the SIGKILL'}); the kill's delta ${killReturned - killDelta.at} ms before its return; saga completed as ${beta}`,
    );
  }

  it("hands the step in flight and the rest to the substitute: the tool saw the killed agent's request abort, each key acted once, the saga completed as the substitute", () =>
    handOff('kill-handoff', true));

  it("without a crash, the cancellation itself aborts the killed agent's HTTP request within the heartbeat timeout; the substitute completes the saga", () =>
    handOff('kill-nocrash', false));

  it('without a substitute, or with one that fails the gate, the saga compensates in reverse: the step in flight too, each key once', async () => {
    const { tool } = lab;
    const cases = [
      { sessionId: 'kill-nosub', substituteDid: undefined },
      { sessionId: 'kill-weaksub', substituteDid: weak },
    ];
    const runs = await Promise.all(
      cases.map(async (c) => {
        const session = await activeSession(lab, c.sessionId, {
          agents: { [alpha]: 0.85, [weak]: 0.5 },
          config: { sreWitnesses: [SRE] },
        });
        const saga = await session.startSaga({
          sagaId: 'c',
          steps: [
            toolStep('draft', alpha, quick, timing),
            toolStep('reserve', alpha, slow, timing),
            toolStep('publish', alpha, quick, timing),
          ],
        });
        return {
          ...c,
          session,
          saga,
          k: (stepId: string, phase: 'execute' | 'undo' = 'execute') => stepKey(saga, stepId, phase),
        };
      }),
    );
    await waitUntil(
      async () => tool.runningKeys(),
      (ks) => runs.every((r) => ks.includes(r.k('step-2'))),
      "alpha's step-2 requests in flight at the tool",
    );

    const { killReturned } = await killThenCrash(
      runs.map(
        (r) => () =>
          asSre(lab, r.session).kill({
            agentDid: alpha,
            sreDid: SRE,
            reason: 'compromised key',
            ...(r.substituteDid ? { substituteDid: r.substituteDid } : {}),
          }),
      ),
    );

    for (const r of runs) {
      const result = await r.saga.result();
      const story = `${r.sessionId}: ${result.error}\n${await lab.activityStory(r.saga.handle.workflowId)}`;
      assert.equal(result.saga.state, 'compensated', story);
      assert.equal(result.failedStepId, 'step-2', story);
      assert.match(result.error ?? '', /ring violation/, story);
      // Step 2 may have acted (cancelled while it ran): compensated first, then step 1; step 3 never ran.
      assert.deepEqual(result.compensationOrder, ['step-2', 'step-1'], story);
      assert.deepEqual(
        result.saga.steps.map((s) => s.state),
        ['compensated', 'compensated', 'pending'],
        story,
      );

      const killDelta = await killDeltaOf(r.session, alpha);
      assertKilledAgentStopped(r.saga, r.k('step-2'), alpha, killDelta, killReturned);
      assert.equal(
        tool.arrivals.some((a) => a.key === r.k('step-3')),
        false,
        `${r.sessionId}: step 3 never reached the tool`,
      );
      // The undo of the step in flight waited for its execute (still acting at the tool) and acted once after it.
      assert.ok(
        tool.startedAt.get(r.k('step-2', 'undo'))! >= tool.finishedAt.get(r.k('step-2'))!,
        `${r.sessionId}: step 2's undo acted after its execute`,
      );
      // The undos are the steps' (alpha's; step 2's is the substitute's once handed to it), in reverse order.
      const undos = tool.actOrder.filter((key) => ofSagas([r.saga])(key) && key.endsWith('/undo'));
      assert.deepEqual(undos, [r.k('step-2', 'undo'), r.k('step-1', 'undo')]);
      assert.deepEqual(
        tool.arrivals
          .filter((a) => a.key === r.k('step-1', 'undo'))
          .map((a) => a.agentDid)
          .filter((d, i, all) => all.indexOf(d) === i),
        [alpha],
      );
      assert.deepEqual(
        tool.arrivals
          .filter((a) => a.key === r.k('step-2', 'undo'))
          .map((a) => a.agentDid)
          .filter((d, i, all) => all.indexOf(d) === i),
        [r.substituteDid ?? alpha],
      );
      tool.assertActed(
        [r.k('step-1'), r.k('step-2'), r.k('step-2', 'undo'), r.k('step-1', 'undo')],
        [result],
        ofSagas([r.saga]),
      );

      assert.ok(
        (await r.session.summary()).participants.every((p) => !p.slashed),
        `${r.sessionId}: every undo succeeded, nobody slashed`,
      );
      const audit = await r.session.audit();
      assert.equal(audit.verification.ok, true);
      assert.equal(verifyTrail(audit.trail).ok, true);
      assert.deepEqual(await lab.workflowTaskFailures([r.session.handle.workflowId, r.saga.handle.workflowId]), []);
      assertLostAttemptNotRetried(await lab.activityStory(r.saga.handle.workflowId));
    }
    assert.deepEqual(tool.doubleActs(), []);
    assert.deepEqual(tool.undosWithoutExecute(), []);
    console.log(
      `    ${runs.length} sagas compensated after the kill and the crash; aborts seen: ${tool.aborts
        .filter((a) => runs.some((r) => a.key === r.k('step-2')))
        .map((a) => `${a.at - killReturned} ms`)
        .join(', ')} after the kills returned`,
    );
  });
});
