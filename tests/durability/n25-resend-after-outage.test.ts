/**
 * N25 (issue 24): a resent startSaga after an outage must not start a second
 * saga. The outside review sent 15 typed-client startSaga calls without a saga
 * id just before a server SIGKILL; three were applied but failed at the client
 * (UNAVAILABLE), and resent after the restart each became two sagas whose
 * steps acted under different idempotency keys.
 *
 * Here: the same 15 calls through the typed client, the dev server SIGKILLed
 * while they are in flight (some applied and not yet answered), restarted on
 * the same database; the client retries each call with its one request id.
 * Exactly one saga per call, and exactly one effect per step's idempotency
 * key at the tool. The session continues as new every 10 updates, so resends
 * also reach a run that did not apply them (the session's own request record).
 */
import assert from 'node:assert/strict';
import { verifyTrail } from '../../src/core/audit';
import { AGENTS, Lab, toolActions, toolStep, waitUntil } from './harness';

describe('durability: N25 — startSaga calls resent after a server SIGKILL', function () {
  this.timeout(300_000);
  const lab = Lab.forSuite();

  it('N25: 15 typed startSaga calls cut by a server SIGKILL and retried with their request ids: one saga per call, one effect per step', async () => {
    const { tool } = lab;
    const session = await lab.hv.createSession({
      sessionId: `n25-${Date.now().toString(36)}`,
      creatorDid: 'did:mesh:admin',
      maxUpdatesPerRun: 10,
      config: { allowedToolOrigins: [tool.base] },
    });
    for (const [agentDid, sigmaRaw] of [
      [AGENTS.alpha, 0.85],
      [AGENTS.beta, 0.8],
    ] as const)
      await session.join({ agentDid, sigmaRaw, actions: toolActions(tool) });
    await session.activate();

    const calls = 15;
    const timing = {
      timeoutSeconds: 5,
      retry: { maximumAttempts: 20, initialIntervalSeconds: 0.5, backoffCoefficient: 1.5, maximumIntervalSeconds: 3 },
    };
    let answered = 0;
    const errors: string[] = [];
    const starts = Array.from({ length: calls }, (_, i) =>
      session
        .startSaga({
          description: `n25 call ${i}`,
          steps: [
            toolStep('draft', AGENTS.alpha, { delayMs: 200 }, timing),
            toolStep('publish', AGENTS.beta, { delayMs: 200 }, timing),
          ],
        })
        .then(
          (saga) => {
            answered++;
            return saga;
          },
          (err: unknown) => {
            errors.push(String(err));
            throw err;
          },
        ),
    );

    // SIGKILL the server once a few sagas run and calls are still on their way. The sagas are counted at the
    // tool (in this process: a saga whose step called it was started by its session), not by querying the
    // session, whose answers a hand-over or a loaded machine can hold back until every call was answered.
    const sagasAtTool = () => new Set(tool.arrivals.map((a) => a.key.split('/').slice(0, -2).join('/'))).size;
    const atKill = await waitUntil(
      async () => ({ sagas: sagasAtTool(), answered }),
      (s) => s.sagas >= 3,
      'three sagas running',
      60_000,
    );
    const answeredAtKill = answered;
    const { downMs } = await lab.restartServer(3000, { kill: true });
    const sagas = await Promise.all(starts);
    assert.deepEqual(errors, [], 'every call got its answer in the end');
    assert.ok(answeredAtKill < calls, `calls were on their way at the kill (${answeredAtKill} of ${calls} answered)`);

    // One saga per call: 15 distinct ids, and the session knows exactly these.
    const ids = sagas.map((s) => s.sagaId);
    assert.equal(new Set(ids).size, calls, `15 distinct sagas: ${ids.join(', ')}`);
    const results = await Promise.all(sagas.map((s) => s.result()));
    for (const r of results) assert.equal(r.saga.state, 'completed', `${r.workflowId}: ${r.error}`);
    const records = await waitUntil(
      () => session.sagas(),
      (r) => r.length === calls && r.every((s) => s.state === 'completed'),
      'the session to learn every outcome',
    );
    assert.deepEqual(
      records.map((s) => s.sagaId).sort(),
      [...ids].sort(),
      'the session started exactly one saga per call',
    );

    // One effect per step, under the saga's own keys: nothing else acted.
    const expected = results.flatMap((r) => ['step-1', 'step-2'].map((s) => `${r.workflowId}/${s}/execute`));
    tool.assertActed(expected, results);
    assert.deepEqual(tool.doubleActs(), []);

    const audit = await session.audit();
    assert.equal(audit.verification.ok, true);
    assert.equal(verifyTrail(audit.trail).ok, true);
    const sagaStarts = audit.trail.deltas
      .flatMap((d) => d.changes)
      .filter((c) => /^\/sagas\/[^/]+$/.test(c.path) && c.operation === 'add');
    assert.equal(sagaStarts.length, calls, 'one saga start in the trail per call');
    const runs = (await session.summary()).runs;
    assert.deepEqual(
      await lab.workflowTaskFailures([session.handle.workflowId, ...results.map((r) => r.workflowId)]),
      [],
    );
    console.log(
      `    server SIGKILLed with ${atKill.sagas} sagas running and ${answeredAtKill}/${calls} calls answered; down ${(downMs / 1000).toFixed(1)} s; ${calls} sagas, ${tool.actedCount()} effects for ${tool.totalRequests()} tool requests; the session ran ${runs} runs`,
    );
  });
});
