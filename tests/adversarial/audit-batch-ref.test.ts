/**
 * Issue 20: the session sends each audit batch by reference — turns, parent and head, no deltas —
 * and the appendAuditDeltas activity reads the deltas from its own workflow execution (the
 * pendingAuditBatch query). SPEC §11: the reference is a claim like any input. A head or parent the
 * session's deltas do not chain to, a range it does not hold, or another session's id stores nothing;
 * what the activity reads is always its own session's; and when a read does not chain (a replay
 * computed a delta differently) or an older worker refuses the reference, that batch lands inline
 * and the trail stays sound.
 */
import assert from 'node:assert/strict';
import { MockActivityEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { ApplicationFailure } from '@temporalio/common';
import { auditActivities, queryOwnSession, type PendingBatchReader } from '../../activities/audit';
import { createActivities } from '../../activities';
import {
  deltasOfAuditBatch,
  fromAuditBatch,
  refOfAuditBatch,
  toAuditBatch,
  type AuditBatch,
} from '../../src/contract/auditBatch';
import type { Delta } from '../../src/core/audit';
import type { AuditStore } from '../../src/store/types';
import { loadHypervisorKey } from '../../src/store/treeHeads';
import { createHypervisorWorker, workflowBundle } from '../../worker/worker';
import { testEnv } from '../helpers/env';
import {
  ACTIONS,
  EventType,
  RawSession,
  expectSoundAudit,
  history,
  openSession,
  scheduledActivities,
  uid,
  until,
  workflowTaskFailures,
} from './raw';

/** The store, refusing every call while `down` (as an unreachable database does). */
function flaky(inner: AuditStore): { store: AuditStore; outage: { down: boolean } } {
  const outage = { down: false };
  const store = new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function' || prop === 'close') return value;
      return (...args: unknown[]) =>
        outage.down
          ? Promise.reject(new Error('audit store unreachable (test outage)'))
          : (value as (...a: unknown[]) => unknown).apply(target, args);
    },
  });
  return { store, outage };
}

const BETA = 'did:mesh:beta';

/** A session on `taskQueue` (a worker of the test's own), its agents joined and the session active. */
async function openOn(taskQueue: string, agents = true): Promise<RawSession> {
  const env = await testEnv();
  const id = uid('ref');
  const handle = await env.client.workflow.start('sessionWorkflow', {
    taskQueue,
    workflowId: `hv-session-${id}`,
    args: [{ sessionId: id, creatorDid: 'did:mesh:admin' }],
  });
  const session = new RawSession(id, handle, env.client);
  if (agents) {
    await session.update('join', { agentDid: 'did:mesh:alpha', sigmaRaw: 0.97, actions: ACTIONS });
    await session.update('join', { agentDid: BETA, sigmaRaw: 0.8, actions: ACTIONS });
    await session.update('activate');
  }
  return session;
}

/** `n` one-step sagas (a ring 2 step: no approvals), each completed. */
async function runSagas(session: RawSession, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const { sagaId } = await session.startSaga({ steps: [{ actionId: 'draft', agentDid: BETA }] });
    const snap = await session.sagaResult(sagaId);
    assert.equal(snap.saga.state, 'completed', `saga ${i}: ${snap.error}`);
  }
}

/** Every delta the session recorded is in the store. */
const allStored = (session: RawSession) =>
  until(
    () => session.query('auditHead'),
    (h: { stored: number; deltaCount: number }) => h.stored === h.deltaCount,
    `the store to hold all of ${session.id}'s trail`,
    60_000,
  );

/** The session's appendAuditDeltas inputs, in order. */
async function auditInputs(session: RawSession): Promise<any[]> {
  return (await scheduledActivities(session.workflowId))
    .filter((a) => a.type === 'appendAuditDeltas')
    .map((a) => a.arg);
}

async function execution(session: RawSession): Promise<{ workflowId: string; runId: string }> {
  const { runId } = await session.handle.describe();
  return { workflowId: session.workflowId, runId };
}

function unread(turns: string, why: RegExp): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof ApplicationFailure, String(err));
    assert.equal(err.type, 'AUDIT_BATCH_UNREAD', err.message);
    assert.equal(err.nonRetryable, true);
    assert.match(err.message, new RegExp(`turns ${turns}\\b`));
    assert.match(err.message, why);
    assert.match(err.message, /nothing is stored/);
    return true;
  };
}

describe('Issue 20: an audit batch by reference', function () {
  this.timeout(300_000);
  const workers: { worker: Worker; running: Promise<void> }[] = [];
  after(async () => {
    for (const w of workers) w.worker.shutdown();
    await Promise.all(workers.map((w) => w.running));
  });

  describe('while the store is down (the sessions hold their first turn pending)', () => {
    let outage: { down: boolean };
    let x: RawSession;
    let y: RawSession;
    let xRef: ReturnType<typeof refOfAuditBatch>;
    let run: (exec: { workflowId: string; runId: string }, input: unknown) => Promise<unknown>;

    before(async () => {
      const env = await testEnv();
      const flakyStore = flaky(env.store);
      outage = flakyStore.outage;
      outage.down = true;
      const taskQueue = uid('hv-ref');
      const worker = await createHypervisorWorker({
        connection: env.nativeConnection,
        namespace: env.namespace,
        taskQueue,
        store: flakyStore.store,
        retentionSchedule: false,
        hypervisorKey: loadHypervisorKey({ dataDir: env.dataDir }),
      });
      workers.push({ worker, running: worker.run() });
      [x, y] = [await openOn(taskQueue, false), await openOn(taskQueue, false)];
      for (const s of [x, y])
        await until(
          () => s.query('auditHead'),
          (h: { pending: Delta[] }) => h.pending.length > 0,
          `${s.id}'s first turn to be pending`,
        );
      const pending: Delta[] = (await x.query('auditHead')).pending;
      const { runId } = await execution(x);
      xRef = refOfAuditBatch(toAuditBatch(x.id, runId, pending)!);
      // The activity as the worker runs it: the real store (up), the real query of the workflow it runs for.
      const { appendAuditDeltas } = auditActivities(env.store, loadHypervisorKey({ dataDir: env.dataDir }));
      run = (workflowExecution, input) =>
        new MockActivityEnvironment({ workflowExecution }, { client: env.client }).run(
          appendAuditDeltas,
          input as never,
        );
    });

    after(async () => {
      outage.down = false;
      for (const s of [x, y]) await s?.handle.terminate('test over').catch(() => undefined);
    });

    it('refuses a head the session does not hold, naming the turns; nothing is stored', async () => {
      const { store } = await testEnv();
      await assert.rejects(
        run(await execution(x), { ...xRef, head: 'f'.repeat(64) }),
        unread(`${xRef.fromTurn} to ${xRef.through}`, /not to the session's head f{64}/),
      );
      assert.deepEqual(await store.readRows(x.id), []);
    });

    it('refuses a parent the deltas do not start from; nothing is stored', async () => {
      const { store } = await testEnv();
      await assert.rejects(
        run(await execution(x), { ...xRef, parentHash: 'a'.repeat(64) }),
        unread(`${xRef.fromTurn} to ${xRef.through}`, /chained from a{64}/),
      );
      assert.deepEqual(await store.readRows(x.id), []);
    });

    it('refuses turns the session does not hold pending (the session itself refuses the read); nothing is stored', async () => {
      const { store } = await testEnv();
      await assert.rejects(
        run(await execution(x), { ...xRef, through: xRef.through + 2 }),
        unread(`${xRef.fromTurn} to ${xRef.through + 2}`, /are not its pending deltas/),
      );
      await assert.rejects(
        run(await execution(x), { ...xRef, fromTurn: xRef.through + 1, through: xRef.through + 1 }),
        unread(`${xRef.through + 1} to ${xRef.through + 1}`, /are not its pending deltas/),
      );
      assert.deepEqual(await store.readRows(x.id), []);
    });

    it("reads only its own workflow's deltas: another session's reference, run for session Y, stores nothing of X's", async () => {
      const { store } = await testEnv();
      // X's own reference, verbatim, in an activity of Y: Y's deltas under X's id do not chain to X's head.
      await assert.rejects(
        run(await execution(y), xRef),
        unread(`${xRef.fromTurn} to ${xRef.through}`, new RegExp(`of session ${x.id}`)),
      );
      assert.deepEqual(await store.readRows(x.id), []);
      assert.deepEqual(await store.readRows(y.id), []);
    });

    it("stores the honest reference (the control); a forged one that chains Y's deltas under X's id meets the store's owner check", async () => {
      const { store } = await testEnv();
      await run(await execution(x), xRef);
      const stored = (await store.readRows(x.id)).map((r) => r.json);
      const pending: Delta[] = (await x.query('auditHead')).pending;
      assert.deepEqual(
        stored,
        pending.map((d) => JSON.stringify(d)),
      );
      // The attacker (a workflow Y on the task queue) makes its reference chain: Y's own deltas rebuilt under X's id.
      const yBatch = (await y.query('pendingAuditBatch', {
        fromTurn: 1,
        through: (await y.query('auditHead')).pending.length,
      })) as AuditBatch;
      const forged = fromAuditBatch({ ...yBatch, sessionId: x.id, chain: xRef.chain });
      const forgedRef = { ...xRef, through: forged.length, head: forged.at(-1)!.hash };
      await assert.rejects(run(await execution(y), forgedRef), (err: unknown) => {
        assert.ok(err instanceof ApplicationFailure, String(err));
        assert.equal(err.type, 'AUDIT_CONFLICT', err.message);
        return true;
      });
      assert.deepEqual(
        (await store.readRows(x.id)).map((r) => r.json),
        stored,
      );
      // The store back: the session's own batch lands on what the control stored, and its trail is sound.
      outage.down = false;
      await allStored(x);
      await expectSoundAudit(x);
      assert.deepEqual(await workflowTaskFailures([x.workflowId, y.workflowId]), []);
    });
  });

  it('after many sagas, every batch went by reference and the trail is sound, row for row the session’s deltas', async () => {
    const env = await testEnv();
    const session = await openSession({ 'did:mesh:alpha': 0.97, [BETA]: 0.8 });
    await runSagas(session, 12);
    await allStored(session);
    const trail = await expectSoundAudit(session);
    const inputs = await auditInputs(session);
    assert.ok(inputs.length >= 2, `several batches: ${inputs.length}`);
    for (const input of inputs) {
      assert.deepEqual(Object.keys(input).sort(), ['chain', 'fromTurn', 'head', 'parentHash', 'sessionId', 'through']);
    }
    // What the inline form would have stored: the session's own deltas, text for text.
    const rows = await env.store.readRows(session.id);
    assert.equal(rows.length, trail.deltas.length);
    assert.deepEqual(
      rows.map((r) => JSON.parse(r.json) as Delta),
      trail.deltas,
    );
    const turns = inputs.map((i) => [i.fromTurn, i.through]);
    assert.deepEqual(
      turns.flat(),
      turns
        .flat()
        .slice()
        .sort((a, b) => a - b),
      'consecutive batches',
    );
    assert.equal(turns.at(-1)![1], rows.length);
    assert.deepEqual(await workflowTaskFailures([session.workflowId]), []);
  });

  /** An activity that refuses the first two references it gets (`type`), then serves as the worker does. */
  type Refusing = (env: Awaited<ReturnType<typeof testEnv>>) => {
    activities: ReturnType<typeof auditActivities>;
    refused: () => number;
  };
  const refusing: [string, string, Refusing][] = [
    [
      'a read does not chain (a replay computed a delta differently)',
      'AUDIT_BATCH_UNREAD',
      (env) => {
        let tampered = 0;
        // The session's answer as a worker that recomputed a delta's time on replay would give it.
        const replayed: PendingBatchReader = async (ref) => {
          const batch = (await queryOwnSession(ref)) as AuditBatch;
          if (tampered < 2) {
            tampered++;
            batch.deltas[0]!.at += 1500;
          }
          return batch;
        };
        const key = loadHypervisorKey({ dataDir: env.dataDir });
        return { activities: auditActivities(env.store, key, replayed), refused: () => tampered };
      },
    ],
    [
      'a worker older than the reference form refuses it as no batch (a rolling upgrade)',
      'INVALID_INPUT',
      (env) => {
        let refused = 0;
        const current = auditActivities(env.store, loadHypervisorKey({ dataDir: env.dataDir }));
        const activities: ReturnType<typeof auditActivities> = {
          ...current,
          // The older worker took any batch with fromTurn for the inline form, and refused it as that.
          async appendAuditDeltas(args) {
            if ('through' in args && refused < 2) {
              refused++;
              try {
                deltasOfAuditBatch(args);
              } catch (err) {
                throw ApplicationFailure.nonRetryable((err as Error).message, 'INVALID_INPUT');
              }
            }
            return current.appendAuditDeltas(args);
          },
        };
        return { activities, refused: () => refused };
      },
    ],
  ];

  for (const [what, type, make] of refusing) {
    it(`when ${what}, that batch lands inline and the trail is sound`, async () => {
      const env = await testEnv();
      const key = loadHypervisorKey({ dataDir: env.dataDir });
      const { activities, refused } = make(env);
      const taskQueue = uid('hv-ref-fallback');
      const worker = await Worker.create({
        connection: env.nativeConnection,
        namespace: env.namespace,
        taskQueue,
        workflowBundle: await workflowBundle(),
        activities: { ...createActivities(env.client, env.store, undefined, undefined, key), ...activities },
      });
      workers.push({ worker, running: worker.run() });
      // Three batches at least: the first turn, the joins, the sagas.
      const session = await openOn(taskQueue);
      await allStored(session);
      await runSagas(session, 4);
      await allStored(session);
      await expectSoundAudit(session);
      assert.equal(refused(), 2);
      const inputs = await auditInputs(session);
      const inline = inputs.filter((i) => 'deltas' in i);
      assert.equal(inline.length, 2, `each refused batch went again inline, once: ${JSON.stringify(inputs)}`);
      for (const i of inline) {
        const ref = inputs[inputs.indexOf(i) - 1];
        assert.ok('through' in ref, 'the reference came first');
        assert.deepEqual(refOfAuditBatch(i), ref, 'the same batch');
      }
      const events = await history(env.client, session.workflowId);
      const failures = events
        .filter((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED)
        .map((e) => e.activityTaskFailedEventAttributes?.failure?.applicationFailureInfo?.type);
      assert.deepEqual(failures, [type, type]);
      assert.ok('through' in inputs.at(-1), 'later batches go by reference again');
      const patches = events
        .filter((e) => e.eventType === EventType.EVENT_TYPE_MARKER_RECORDED)
        .map((e) => e.markerRecordedEventAttributes!)
        .filter((m) => m.markerName === 'core_patch')
        .map(
          (m) => JSON.parse(Buffer.from(m.details!['patch-data']!.payloads![0]!.data!).toString('utf8')).id as string,
        );
      assert.ok(patches.includes('audit-batch-inline'), `the patch marker: ${patches.join(', ')}`);
      const rows = await env.store.readRows(session.id);
      const { pending, deltaCount } = await session.query('auditHead');
      assert.equal(pending.length, 0);
      assert.equal(rows.length, deltaCount);
      assert.deepEqual(await workflowTaskFailures([session.workflowId]), []);
    });
  }
});
