/**
 * Issue 5, part 3: the dev server stopped and started again on the same
 * database file while sagas run slow HTTP steps and clients keep sending
 * session updates. The worker process stays up and reconnects; the sagas
 * finish; each update a client retried with its own update id applies once.
 */
import assert from 'node:assert/strict';
import { verifyTrail } from '../../src/core/audit';
import {
  AGENTS,
  Lab,
  activeSession,
  retrying,
  toolStep,
  transientErrors,
  waitUntil,
  type ToolActionId,
} from './harness';

describe('durability: the dev server restarted mid-saga', function () {
  this.timeout(300_000);
  const lab = Lab.forSuite();

  it('carries sagas and sessions on across a stop and start of the server on the same database', async () => {
    const { tool } = lab;
    const sagaSession = await activeSession(lab, 'restart-sagas');
    const writers = [await activeSession(lab, 'restart-w1'), await activeSession(lab, 'restart-w2')];
    const worker = lab.live()[0]!;
    const sagaCount = 4;
    const failing = (i: number) => i === 3;
    const step = (actionId: ToolActionId, fail = false) =>
      toolStep(
        actionId,
        AGENTS.alpha,
        { delayMs: 1000, undoDelayMs: 300, fail },
        {
          timeoutSeconds: 3,
          retry: {
            maximumAttempts: 10,
            initialIntervalSeconds: 0.5,
            backoffCoefficient: 1.5,
            maximumIntervalSeconds: 3,
          },
        },
      );
    const sagas = await Promise.all(
      Array.from({ length: sagaCount }, (_, i) =>
        sagaSession.startSaga({
          sagaId: `r${i}`,
          steps: [step('draft'), step('reserve'), step('publish'), step('notify', failing(i))],
        }),
      ),
    );

    // Clients write files, one update id per write, retrying the same id while the server is away.
    const writesPerSession = 12;
    let retriedWrites = 0;
    let writesInFlight = 0;
    let maxWritesInFlightDuringOutage = 0;
    let written = 0;
    const writeAll = async (session: (typeof writers)[number]) => {
      for (let n = 0; n < writesPerSession; n++) {
        let tries = 0;
        writesInFlight++;
        await retrying(() => {
          tries++;
          return session.handle.executeUpdate('vfsWrite', {
            args: [
              { agentDid: AGENTS.alpha, path: `/sessions/${session.sessionId}/notes/n${n}`, content: `note ${n}` },
            ],
            updateId: `${session.sessionId}-write-${n}`,
          });
        }, `write ${n} to ${session.sessionId}`);
        writesInFlight--;
        if (tries > 1) retriedWrites++;
        written++;
        await new Promise((r) => setTimeout(r, 150)); // pacing, so that writes straddle the restart
      }
    };
    let writeError: unknown;
    const writing = Promise.all(writers.map(writeAll));
    writing.catch((err) => {
      writeError = err;
    });

    // Restart once steps are acting and some writes are done.
    await waitUntil(
      async () => ({ acted: tool.actedCount(), inFlight: tool.inFlight(), written }),
      (s) => {
        if (writeError) throw writeError;
        return s.acted >= 5 && s.inFlight >= 1 && s.written >= 4;
      },
      'steps in flight and writes under way',
    );
    const outage = setInterval(() => {
      maxWritesInFlightDuringOutage = Math.max(maxWritesInFlightDuringOutage, writesInFlight);
    }, 50);
    const { downMs } = await lab.restartServer(5000).finally(() => clearInterval(outage));
    const writtenAtRestart = written;
    await writing;
    // Updates were on their way while the server was down, and more followed it.
    assert.ok(maxWritesInFlightDuringOutage >= 1, 'a write was in flight during the outage');
    assert.ok(writtenAtRestart < 2 * writesPerSession, 'writes continued after the restart');

    const results = await Promise.all(sagas.map((s) => retrying(() => s.result(), 'saga result')));
    results.forEach((r, i) => {
      if (failing(i)) {
        assert.equal(r.saga.state, 'compensated', r.workflowId);
        assert.deepEqual(r.compensationOrder, ['step-3', 'step-2', 'step-1']);
      } else {
        assert.equal(r.saga.state, 'completed', r.workflowId);
      }
    });
    const expected = new Set<string>();
    results.forEach((_, i) => {
      const id = sagas[i]!.handle.workflowId;
      for (const s of ['step-1', 'step-2', 'step-3', 'step-4']) expected.add(`${id}/${s}/execute`);
      if (failing(i)) for (const s of ['step-3', 'step-2', 'step-1']) expected.add(`${id}/${s}/undo`);
    });
    tool.assertActed(expected, results);
    assert.deepEqual(tool.doubleActs(), []);
    assert.deepEqual(tool.undosWithoutExecute(), []);

    // The same worker process carried on through the restart.
    assert.equal(worker.exitInfo, undefined, 'the worker process survived the server restart');
    assert.deepEqual(lab.live(), [worker]);

    // Each write applied exactly once, whatever the retries.
    for (const session of writers) {
      const audit = await session.audit();
      assert.equal(audit.verification.ok, true);
      assert.equal(verifyTrail(audit.trail).ok, true);
      for (let n = 0; n < writesPerSession; n++) {
        const edits = audit.trail.deltas.flatMap((d) => d.changes).filter((c) => c.path.endsWith(`/notes/n${n}`));
        assert.equal(edits.length, 1, `write ${n} in ${session.sessionId} applied once`);
        assert.equal(edits[0]!.operation, 'add');
      }
      assert.equal((await session.summary()).files, writesPerSession);
    }
    await waitUntil(
      () => sagaSession.sagas(),
      (s) => s.length === sagaCount && s.every((g) => g.state === 'completed' || g.state === 'compensated'),
      'the session to learn every outcome',
    );
    const audit = await sagaSession.audit();
    assert.equal(audit.verification.ok, true);
    assert.equal(verifyTrail(audit.trail).ok, true);

    // Terminate after the restart: the sessions still commit their roots.
    for (const session of [sagaSession, ...writers]) {
      const done = await session.terminate();
      const after = await session.summary();
      assert.equal(after.state, 'archived');
      assert.equal(done.commitment.merkleRoot, after.merkleRoot);
      assert.equal(done.commitment.deltaCount, after.deltaCount);
    }
    assert.deepEqual(
      await lab.workflowTaskFailures(
        [sagaSession, ...writers].map((s) => s.handle.workflowId).concat(sagas.map((s) => s.handle.workflowId)),
      ),
      [],
    );
    console.log(
      `    server down ${(downMs / 1000).toFixed(1)} s; ${sagaCount} sagas finished; ${written} writes (${maxWritesInFlightDuringOutage} in flight during the outage), ${retriedWrites} of them retried with their update id; ${tool.actedCount()} side effects for ${tool.totalRequests()} requests, ${tool.noopUndos.length} undos of never-run steps (no-ops)`,
    );
    if (transientErrors.length)
      console.log(
        `    client errors during the outage (retried): ${[...new Set(transientErrors.map((m) => m.replace(/\d+/g, 'N')))].slice(0, 3).join(' | ')}`,
      );
  });
});
