/**
 * The session keeps only the trail's head (SPEC §7 [resolved]): its deltas go
 * to the audit store in batches, the state carried across continue-as-new is
 * the chain head, the turn and the Merkle frontier, and what termination
 * leaves is stored before the session archives.
 */
import assert from 'node:assert/strict';
import { WorkflowFailedError } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { ApplicationFailure } from '@temporalio/common';
import { readTrail, verifyStoredTrail } from '../../src/store/trail';
import { testEnv } from '../helpers/env';
import { eventually, hypervisor, uniqueId } from '../helpers/hv';
import { appendDelta, createAuditState } from '../../src/core/audit';
import { commitAudit } from '../../src/core/commitment';
import { retentionScheduleId } from '../../worker/schedules';

/** The size in bytes of each run's start input, first run first (walked back from the last run). */
async function startInputSizes(workflowId: string): Promise<number[]> {
  const { client, namespace } = await testEnv();
  const sizes: number[] = [];
  for (let runId: string | undefined = ''; runId !== undefined;) {
    const history: temporal.api.workflowservice.v1.IGetWorkflowExecutionHistoryResponse =
      await client.workflowService.getWorkflowExecutionHistory({
        namespace,
        execution: { workflowId, runId },
        maximumPageSize: 1,
      });
    const started = history.history?.events?.[0]?.workflowExecutionStartedEventAttributes;
    sizes.unshift(started?.input?.payloads?.[0]?.data?.length ?? -1);
    runId = started?.continuedExecutionRunId || undefined;
  }
  return sizes;
}

describe('the audit store behind the session workflow', function () {
  this.timeout(600_000);

  it('drives a session through 5,000+ deltas: the carried state stays flat and under 64 KiB, and the stored trail verifies against the commitment', async () => {
    const hv = await hypervisor();
    const { store } = await testEnv();
    const sessionId = uniqueId('long');
    const session = await hv.createSession({ sessionId, creatorDid: 'did:mesh:admin', maxUpdatesPerRun: 500 });
    // A read-only action it declared: checks within its ring (5,000 checks above it would trip the breach breaker, SPEC §12).
    await session.join({
      agentDid: 'did:mesh:alpha',
      sigmaRaw: 0.85,
      actions: [{ actionId: 'read-data', readOnly: true }],
    });
    await session.activate();
    const total = 5_000;
    const batch = 64;
    for (let i = 0; i < total; i += batch) {
      await Promise.all(
        Array.from({ length: Math.min(batch, total - i) }, () =>
          session.checkAction({ agentDid: 'did:mesh:alpha', actionId: 'read-data' }),
        ),
      );
    }
    const ended = await session.terminate();
    assert.ok(ended.commitment.deltaCount >= total + 3, `deltaCount ${ended.commitment.deltaCount}`);

    const sizes = await startInputSizes(session.handle.workflowId);
    assert.ok(sizes.length >= 10, `runs: ${sizes.length}`);
    const carried = sizes.slice(1);
    assert.ok(Math.max(...carried) < 64 * 1024, `carried sizes ${carried.join(', ')}`);
    // Flat: no trend, only counters (a digit now and then) and the bounded memory of the last 128 requests
    // (N25: ids, hashes and small answers, full from the first hand-over on) move; the trail is never carried.
    assert.ok(Math.max(...carried) - Math.min(...carried) < 2048, `carried sizes ${carried.join(', ')}`);

    const trail = await readTrail(store, sessionId);
    assert.equal(trail.record?.commitment.merkleRoot, ended.commitment.merkleRoot);
    assert.deepEqual(verifyStoredTrail(trail), {
      ok: true,
      count: ended.commitment.deltaCount,
      merkleRoot: ended.commitment.merkleRoot,
    });
    assert.deepEqual(trail.record?.liabilitySnapshot, JSON.parse(JSON.stringify(ended.liabilitySnapshot)));
    assert.equal(trail.record?.retainUntil, ended.retainUntil);
  });

  it('retention: the schedule the worker created drops the deltas of a trail past its retainUntil and keeps its commitment; a trail within retention is untouched', async () => {
    const { client, store, taskQueue } = await testEnv();
    const now = Date.now();
    const trails = [
      { id: uniqueId('expired'), retainUntil: now - 60_000 },
      { id: uniqueId('retained'), retainUntil: now + 86_400_000 },
    ];
    for (const t of trails) {
      const audit = createAuditState(t.id);
      for (let i = 0; i < 5; i++)
        appendDelta(audit, {
          deltaId: `d${i}`,
          sessionId: t.id,
          agentDid: 'did:mesh:alpha',
          at: now - 1000 + i,
          changes: [{ path: `/x/${i}`, operation: 'add' }],
        });
      await store.append(t.id, audit.deltas);
      await store.putSession({
        sessionId: t.id,
        commitment: commitAudit(audit, ['did:mesh:alpha'], now - 500),
        liabilitySnapshot: {},
        retainUntil: t.retainUntil,
        deltasPurgedAt: null,
      });
    }
    await client.schedule.getHandle(retentionScheduleId(taskQueue)).trigger();
    const expired = await eventually(
      () => store.getSession(trails[0]!.id),
      (r) => r?.deltasPurgedAt != null,
      'the retention run to purge the expired trail',
    );
    assert.deepEqual(await store.readRows(trails[0]!.id, 1), []);
    assert.equal(expired?.commitment.deltaCount, 5, 'the commitment stays');
    assert.equal((await store.readRows(trails[1]!.id, 1)).length, 5);
    assert.equal((await store.getSession(trails[1]!.id))?.deltasPurgedAt, null);
  });

  it('a new session under an id whose trail the store holds fails with AUDIT_CONFLICT, granting nothing and leaving the stored trail as it was', async () => {
    const hv = await hypervisor();
    const { store } = await testEnv();
    const sessionId = uniqueId('reused');
    const first = await hv.createSession({ sessionId, creatorDid: 'did:mesh:admin' });
    await first.join({ agentDid: 'did:mesh:alpha', sigmaRaw: 0.85 });
    await first.terminate();
    const before = await store.readRows(sessionId, 1);

    const second = await hv.createSession({ sessionId, creatorDid: 'did:mesh:admin' });
    const join = second.join({ agentDid: 'did:mesh:mallory', sigmaRaw: 0.99 }).then(
      () => 'joined',
      (err: unknown) => err,
    );
    await assert.rejects(
      second.handle.result(),
      (err: unknown) =>
        err instanceof WorkflowFailedError &&
        err.cause instanceof ApplicationFailure &&
        err.cause.type === 'AUDIT_CONFLICT',
    );
    assert.notEqual(await join, 'joined');
    assert.deepEqual(await store.readRows(sessionId, 1), before);
  });
});
