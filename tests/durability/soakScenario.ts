/**
 * The soak scenario, shared by the dev-server soak (soak.test.ts) and the
 * cluster test (tests/cluster/): many sagas over many sessions with chaos
 * while they run — worker SIGKILLs and Temporal server restarts. Every saga
 * must end in its expected state (a mix of completing and compensating
 * ones), every side effect must happen once per idempotency key, and every
 * session's audit chain must verify.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { verifyTrail } from '../../src/core/audit';
import type { SagaHandle, SessionHandle } from '../../src/client';
import { sessionWorkflowId, startSagaUpdate } from '../../workflows/definitions';
import { AGENTS, activeSession, retrying, toolStep, waitUntil, type Lab, type ToolActionId } from './harness';

/**
 * What happens, and when: at a share of the expected executes, while steps are in flight.
 * kill: SIGKILL the only worker and start another; kill-one: SIGKILL one of several, the rest go on;
 * restart: stop the Temporal server, keep it down 3 s, start it again.
 */
export interface ChaosEvent {
  kind: 'kill' | 'kill-one' | 'restart';
  at: number;
  inFlight?: number;
  took?: number;
}

export interface SoakOptions {
  name: string;
  sagas: number;
  sessions: number;
  chaos: ChaosEvent[];
}

export async function runSoak(lab: Lab, { name, sagas: SAGAS, sessions: SESSIONS, chaos }: SoakOptions): Promise<void> {
  const t0 = Date.now();
  const { tool, hv } = lab;
  const tag = Date.now().toString(36);
  const sessions: SessionHandle[] = await Promise.all(
    Array.from({ length: SESSIONS }, (_, s) => activeSession(lab, `${name}-${tag}-${s}`)),
  );

  // Saga i: 3 steps of 300–900 ms; every third saga's last step is refused, so it compensates.
  const failing = (i: number) => i % 3 === 2;
  const step = (i: number, k: number, actionId: ToolActionId, fail = false) =>
    toolStep(
      actionId,
      k % 2 ? AGENTS.beta : AGENTS.alpha,
      {
        delayMs: 300 + ((i * 7 + k * 3) % 7) * 100,
        undoDelayMs: 300 + ((i + k) % 4) * 100,
        fail,
      },
      {
        timeoutSeconds: 3,
        retry: { maximumAttempts: 20, initialIntervalSeconds: 0.5, backoffCoefficient: 1.5, maximumIntervalSeconds: 3 },
      },
    );
  // Up to 4 startSaga updates in flight per session (Temporal allows 10 per workflow). Each carries its own
  // update id and is retried with it while the server restarts, so a start is never applied twice.
  const handles: SagaHandle[] = new Array(SAGAS);
  const starting = Promise.all(
    sessions.flatMap((session, s) =>
      Array.from({ length: 4 }, async (_, lane) => {
        for (let i = s + lane * SESSIONS; i < SAGAS; i += 4 * SESSIONS) {
          const req = {
            sagaId: `g${i}`,
            steps: [step(i, 0, 'draft'), step(i, 1, 'reserve'), step(i, 2, 'publish', failing(i))],
          };
          const started = await retrying(
            () =>
              session.handle.executeUpdate(startSagaUpdate, {
                args: [req],
                updateId: `${session.sessionId}-start-g${i}`,
              }),
            `start g${i}`,
            300_000,
          );
          handles[i] = hv.saga(session.sessionId, `g${i}`, started);
        }
      }),
    ),
  );
  let startError: unknown;
  let started = 0;
  starting.then(
    () => {
      started = Date.now();
    },
    (err) => {
      startError = err;
    },
  );

  // Chaos while sagas start and run, each at a share of the expected executes and only while steps are in flight.
  const expectedExecutes = SAGAS * 3;
  const isExecute = (k: string) => k.endsWith('/execute');
  for (const event of chaos) {
    await waitUntil(
      async () => ({ acted: tool.actedCount(isExecute), inFlight: tool.inFlight() }),
      (v) => {
        if (startError) throw startError;
        return v.acted >= event.at * expectedExecutes && v.inFlight >= 1;
      },
      `${event.kind} at ${event.at * 100}% of executes`,
      300_000,
    );
    event.inFlight = tool.inFlight();
    const t = Date.now();
    if (event.kind === 'kill') {
      assert.equal(await lab.killWorkers(), 1);
      await lab.startWorker();
    } else if (event.kind === 'kill-one') {
      await lab.killOneWorker();
    } else {
      await lab.restartServer(3000);
    }
    event.took = Date.now() - t;
  }
  await starting;

  const results = await Promise.all(handles.map((h) => retrying(() => h.result(), `result of ${h.sagaId}`, 600_000)));
  const finished = Date.now();
  const counts: Record<string, number> = {};
  // Any saga not at its expected end: its activities as its history tells them, before the assertions below.
  const astray = results.filter(
    (r, i) =>
      r.saga.state !== (failing(i) ? 'compensated' : 'completed') || (failing(i) && r.failedStepId !== 'step-3'),
  );
  for (const r of astray) {
    const keys = [...tool.requests.keys()]
      .filter((k) => k.startsWith(`${r.workflowId}/`))
      .map(
        (k) => `${k.slice(r.workflowId.length + 1)} asked ${tool.requests.get(k)}×, acted ${tool.acted.get(k) ?? 0}×`,
      );
    console.log(
      `    astray: ${r.saga.state}, failed ${r.failedStepId}: ${r.error}; steps ${JSON.stringify(r.saga.steps.map((x) => [x.stepId, x.state, x.attempts, x.error]))}; tool: ${keys.join('; ')}`,
    );
    console.log(`    ${await lab.activityStory(r.workflowId)}`);
    // Kept with the server and worker logs: the saga's and its session's histories.
    if (process.env.HV_KEEP_DURABILITY_DIR) {
      for (const id of [r.workflowId, sessionWorkflowId(r.sessionId)]) {
        fs.writeFileSync(
          path.join(lab.dir, `${id}.history.json`),
          JSON.stringify(await lab.client.workflow.getHandle(id).fetchHistory(), null, 1),
        );
      }
    }
  }
  results.forEach((r, i) => {
    counts[r.saga.state] = (counts[r.saga.state] ?? 0) + 1;
    assert.equal(r.saga.state, failing(i) ? 'compensated' : 'completed', `saga g${i}: ${r.error ?? ''}`);
    if (failing(i)) {
      // Refused by the tool (its 400), not lost on the way: a lost step-3 would be compensated too.
      assert.equal(r.failedStepId, 'step-3', `saga g${i}`);
      assert.match(r.saga.steps[2]!.error ?? '', /answered 400/, `saga g${i}: step-3 failed for another reason`);
      // A step-3 asked more than once (its first attempt lost with a killed worker) may have acted: undone first (SPEC §6).
      const retried = r.saga.steps[2]!.attempts > 1;
      assert.deepEqual(
        r.compensationOrder,
        retried ? ['step-3', 'step-2', 'step-1'] : ['step-2', 'step-1'],
        `saga g${i}`,
      );
    }
  });

  const expected = new Set<string>();
  results.forEach((r, i) => {
    const id = r.workflowId;
    for (const s of ['step-1', 'step-2', 'step-3']) expected.add(`${id}/${s}/execute`);
    if (failing(i)) for (const s of ['step-2', 'step-1']) expected.add(`${id}/${s}/undo`);
    // A retried step-3 is undone too (it may have acted); this tool's undo then acts once.
    if (failing(i) && r.saga.steps[2]!.attempts > 1) expected.add(`${id}/step-3/undo`);
  });
  tool.assertActed(expected, results);
  assert.deepEqual(tool.doubleActs(), []);
  assert.deepEqual(tool.undosWithoutExecute(), []);

  let deltas = 0;
  let trailBytes = 0;
  for (const [s, session] of sessions.entries()) {
    const mine = results.filter((_, i) => i % SESSIONS === s);
    const known = await waitUntil(
      () => session.sagas(),
      (g) => g.length === mine.length && g.every((x) => x.state === 'completed' || x.state === 'compensated'),
      `session ${s} to learn every outcome`,
    );
    for (const r of mine) assert.equal(known.find((g) => g.workflowId === r.workflowId)?.state, r.saga.state);
    const audit = await session.audit();
    assert.equal(audit.verification.ok, true, `session ${s} chain`);
    const v = verifyTrail(audit.trail);
    assert.equal(v.ok, true, `session ${s} trail`);
    deltas += audit.trail.deltas.length;
    trailBytes = Math.max(trailBytes, Buffer.byteLength(JSON.stringify(audit.trail)));
  }
  const taskFailures = await lab.workflowTaskFailures([
    ...sessions.map((s) => s.handle.workflowId),
    ...handles.map((h) => h.handle.workflowId),
  ]);
  assert.deepEqual(taskFailures, []);

  const line = [
    `sagas ${SAGAS} (completed ${counts.completed ?? 0}, compensated ${counts.compensated ?? 0}) over ${SESSIONS} sessions`,
    `chaos: ${chaos.map((c) => `${c.kind}@${Math.round(c.at * 100)}% (${c.inFlight} in flight, ${(c.took! / 1000).toFixed(1)} s)`).join(', ')}`,
    `side effects ${tool.actedCount()} (expected ${expected.size}), requests ${tool.totalRequests()}, keys asked more than once ${tool.retriedKeys().length}, double acts ${tool.doubleActs().length}, undos of never-run steps (no-ops) ${tool.noopUndos.length}`,
    `audit: ${SESSIONS} chains verified, ${deltas} deltas (largest trail ${(trailBytes / 1024).toFixed(0)} KiB as JSON); workflow task failures: ${taskFailures.length} (UNHANDLED_COMMAND retries, benign: ${lab.unhandledCommandTasks})`,
    `wall: all sagas started after ${((started - t0) / 1000).toFixed(1)} s, last result after ${((finished - t0) / 1000).toFixed(1)} s, total with checks ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  ];
  for (const l of line) console.log(`    ${l}`);
}
