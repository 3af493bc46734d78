/**
 * RELIABILITY.md, fixed finding: a replay that recomputes a stored delta
 * differently must not wedge the session. A session runs on a worker whose
 * live workflow time is ahead of its history's (tests/helpers/liveClockAhead.ts),
 * so every delta a replay recomputes has another `at` and hash than the one
 * the store holds. The worker goes away; the next one keeps no workflow in its
 * cache, so every task replays the whole history. The session must go on
 * storing its deltas, and the stored trail must verify against its commitment.
 */
import assert from 'node:assert/strict';
import { bundleWorkflowCode, Worker, type WorkflowBundle } from '@temporalio/worker';
import { createActivities } from '../../activities';
import { HypervisorClient } from '../../src/client';
import { readTrail, verifyStoredTrail } from '../../src/store/trail';
import { testEnv } from '../helpers/env';
import { eventually, uniqueId } from '../helpers/hv';

const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error: (m: string) => console.error(m) };

describe('a session whose replay recomputes stored deltas differently', function () {
  this.timeout(300_000);
  let bundle: WorkflowBundle;
  before(async () => {
    bundle = await bundleWorkflowCode({
      workflowsPath: require.resolve('../../workflows'),
      workflowInterceptorModules: [require.resolve('../helpers/liveClockAhead')],
      logger: quiet,
    });
  });

  it('keeps storing its trail after the replay (no AUDIT_CONFLICT), and the stored trail verifies against the commitment', async () => {
    const { client, nativeConnection, namespace, store } = await testEnv();
    const taskQueue = uniqueId('replay-skew');
    const startWorker = async (options: { maxCachedWorkflows?: number } = {}) => {
      const worker = await Worker.create({
        connection: nativeConnection,
        namespace,
        taskQueue,
        workflowBundle: bundle,
        activities: createActivities(client, store),
        ...options,
      });
      return { worker, running: worker.run() };
    };
    const hv = new HypervisorClient(client, taskQueue, store);
    const alpha = 'did:mesh:alpha';
    const allStored = async (what: string) =>
      eventually(
        () => session.auditHead(),
        (h) => h.stored === h.deltaCount,
        what,
        40_000,
      );

    let live = await startWorker();
    const session = await hv.createSession({ sessionId: uniqueId('skew'), creatorDid: 'did:mesh:admin' });
    let storedLive: Awaited<ReturnType<typeof store.readRows>>;
    try {
      // A declared read-only action: checks within its ring (undeclared ones, above it, would trip the breach breaker).
      await session.join({ agentDid: alpha, sigmaRaw: 0.85, actions: [{ actionId: 'read-data', readOnly: true }] });
      await session.activate();
      for (let i = 0; i < 5; i++) await session.checkAction({ agentDid: alpha, actionId: 'read-data' });
      await allStored('the first deltas to be stored');
      storedLive = await store.readRows(session.sessionId, 1);
      assert.equal(storedLive.length, 8);
    } finally {
      live.worker.shutdown();
      await live.running;
    }

    // Every task on this worker replays the history, whose clock is behind the one the stored deltas were made with.
    live = await startWorker({ maxCachedWorkflows: 0 });
    try {
      for (let i = 0; i < 5; i++) await session.checkAction({ agentDid: alpha, actionId: 'read-data' });
      const head = await allStored('the deltas recorded after the replay to be stored');
      assert.ok(head.deltaCount >= 13, `deltaCount ${head.deltaCount}`);
      const ended = await session.terminate();
      const trail = await readTrail(store, session.sessionId);
      assert.equal(trail.record?.commitment.merkleRoot, ended.commitment.merkleRoot);
      assert.deepEqual(verifyStoredTrail(trail), {
        ok: true,
        count: ended.commitment.deltaCount,
        merkleRoot: ended.commitment.merkleRoot,
      });
      // The turns stored before the worker went away are still the live run's.
      assert.deepEqual((await store.readRows(session.sessionId, 1)).slice(0, storedLive.length), storedLive);
    } finally {
      live.worker.shutdown();
      await live.running;
    }
  });
});
