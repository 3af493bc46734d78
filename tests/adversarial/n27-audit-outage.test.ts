/**
 * Issue 24, N27: an audit-store outage at a session's continue-as-new point.
 * Before, the run stopped serving there — every request refused with
 * SESSION_CONTINUING for the whole outage plus up to a minute of append
 * backoff. Now it serves on within its bounds (then AUDIT_BACKLOG, never
 * SESSION_CONTINUING), continues as new within seconds of the store answering
 * again, and everything it recorded is stored and verifies.
 */
import assert from 'node:assert/strict';
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Worker } from '@temporalio/worker';
import { readTrail, verifyStoredTrail } from '../../src/store/trail';
import { loadHypervisorKey, verifyTreeHeads } from '../../src/store/treeHeads';
import type { AuditStore } from '../../src/store/types';
import { createHypervisorWorker } from '../../worker/worker';
import { testEnv } from '../helpers/env';
import { eventually, uniqueId } from '../helpers/hv';

/** The store, refusing every call while `down` (as an unreachable database does). */
function flaky(inner: AuditStore): { store: AuditStore; outage: { down: boolean; refused: number } } {
  const outage = { down: false, refused: 0 };
  const store = new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function' || prop === 'close') return value;
      return (...args: unknown[]) => {
        if (outage.down) {
          outage.refused++;
          return Promise.reject(new Error('audit store unreachable (test outage)'));
        }
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store, outage };
}

async function refusalType(call: Promise<unknown>): Promise<string | undefined> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (err === undefined) return undefined;
  const cause = err instanceof WorkflowUpdateFailedError ? err.cause : err;
  return cause instanceof ApplicationFailure ? (cause.type ?? 'ApplicationFailure') : String(err);
}

describe('N27: an audit-store outage at the continue-as-new point', function () {
  this.timeout(300_000);
  let worker: Worker | undefined;
  let running: Promise<void> | undefined;
  after(async () => {
    worker?.shutdown();
    await running;
  });

  it('keeps accepting requests across its continue-as-new point while the store is down, then AUDIT_BACKLOG at its bound; continues within seconds of recovery; everything is stored and verifies', async () => {
    const env = await testEnv();
    const { store, outage } = flaky(env.store);
    const taskQueue = uniqueId('hv-outage');
    const key = loadHypervisorKey({ dataDir: env.dataDir });
    worker = await createHypervisorWorker({
      connection: env.nativeConnection,
      namespace: env.namespace,
      taskQueue,
      store,
      retentionSchedule: false,
      hypervisorKey: key,
    });
    running = worker.run();

    const sessionId = uniqueId('outage');
    const maxUpdatesPerRun = 10;
    const handle: WorkflowHandle = await env.client.workflow.start('sessionWorkflow', {
      taskQueue,
      workflowId: `hv-session-${sessionId}`,
      args: [{ sessionId, creatorDid: 'did:mesh:admin', maxUpdatesPerRun }],
    });
    const update = (name: string, arg?: unknown) =>
      arg === undefined ? handle.executeUpdate(name) : handle.executeUpdate(name, { args: [arg] });
    const check = () => update('checkAction', { agentDid: 'did:mesh:alpha', actionId: 'read-data' });
    const firstRun = (await handle.describe()).runId;

    await update('join', {
      agentDid: 'did:mesh:alpha',
      sigmaRaw: 0.85,
      actions: [{ actionId: 'read-data', readOnly: true }],
    });
    await update('activate');
    for (let i = 0; i < 3; i++) await check();
    await eventually(
      () => handle.query<{ stored: number; deltaCount: number }>('auditHead'),
      (h) => h.stored === h.deltaCount,
      'the trail stored before the outage',
    );

    outage.down = true;
    const downAt = Date.now();
    // Updates 6 … 20: the run reaches its continue-as-new point at 10 and serves on (each accepted at once, none SESSION_CONTINUING).
    for (let i = 6; i <= maxUpdatesPerRun * 2; i++) {
      const started = Date.now();
      assert.equal(await refusalType(check()), undefined, `update ${i} during the outage`);
      assert.ok(Date.now() - started < 10_000, `update ${i} took ${Date.now() - started} ms`);
    }
    assert.equal((await handle.describe()).runId, firstRun, 'no continue-as-new while the store is down');
    // Past its bound the run refuses — with the store's backlog, not the hand-over.
    assert.equal(await refusalType(check()), 'AUDIT_BACKLOG');
    const head = await handle.query<{ stored: number; deltaCount: number }>('auditHead');
    assert.ok(head.stored < head.deltaCount, `the store holds turn ${head.stored} of ${head.deltaCount}`);
    await new Promise((r) => setTimeout(r, Math.max(0, 8_000 - (Date.now() - downAt))));
    assert.ok(outage.refused > 0, 'the worker tried the store during the outage');

    outage.down = false;
    const upAt = Date.now();
    await eventually(
      async () => (await handle.describe()).runId,
      (id) => id !== firstRun,
      'the run continuing as new after the store answers',
      30_000,
    );
    const recovery = Date.now() - upAt;
    assert.ok(
      recovery < 15_000,
      `continued ${recovery} ms after the store answered (the append's retries are at most 10 s apart)`,
    );

    assert.equal(await refusalType(check()), undefined, 'the next run serves');
    const ended = (await handle.executeUpdate('terminate')) as {
      commitment: { deltaCount: number; merkleRoot: string | null };
    };
    assert.ok(
      ended.commitment.deltaCount >= 2 + 1 + maxUpdatesPerRun * 2 - 2 + 1,
      `deltaCount ${ended.commitment.deltaCount}`,
    );
    const trail = await readTrail(env.store, sessionId);
    assert.deepEqual(verifyStoredTrail(trail), {
      ok: true,
      count: ended.commitment.deltaCount,
      merkleRoot: ended.commitment.merkleRoot,
    });
    const deltas = trail.rows.map((r) => JSON.parse(r.json));
    const heads = verifyTreeHeads({
      sessionId,
      did: key.did,
      deltas,
      heads: await env.store.treeHeads(sessionId),
      signedThrough: deltas.length,
      commitment: trail.record!.commitment,
    });
    assert.deepEqual(heads, { ok: true, checked: deltas.length + 1, final: true });
  });
});
