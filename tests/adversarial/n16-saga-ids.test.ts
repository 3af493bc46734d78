/**
 * N16 (issue 24): a saga's workflow id was `hv-saga-<sessionId>-<sagaId>`, and
 * ids may hold "-": session "<s>-b" saga "c" and session "<s>" saga "b-c" had
 * the same workflow id, so one session's saga blocked the other's start
 * (DUPLICATE_SAGA), and the step idempotency keys, `<workflowId>/<stepId>/<phase>`,
 * collided. The id is `hv-saga-<sessionId>/<sagaId>` now: no id holds "/".
 * A session recorded before keeps the old ids (the patch n16-unambiguous-saga-ids).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { defaultPayloadConverter } from '@temporalio/common';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { listSagas } from '../../src/client/lists';
import { isHypervisorError } from '../../src/core/errors';
import { workflowBundle } from '../../worker/worker';
import { hypervisor } from '../helpers/hv';
import { calls } from '../helpers/testHandlers';
import { EventType, openSession, rawClient, sagaWorkflowId, uid, until, workflowTaskFailures } from './raw';

const alpha = 'did:mesh:alpha';
const FIXTURES = path.resolve(__dirname, '..', 'fixtures', 'histories');
/** Recorded sessions that started sagas, before N16. */
const RECORDED = ['session-kill', 'session-sagas-escalation-terminated', 'session-elevation', 'session-rate-limited'];

describe('N16 — saga workflow ids and idempotency keys do not collide across sessions', function () {
  this.timeout(180_000);
  const touched: string[] = [];
  after(async () => assert.deepEqual(await workflowTaskFailures(touched), [], 'no workflow task failed'));

  it('N16: session "<s>-b" saga "c" and session "<s>" saga "b-c" both start and run, each step under its own key', async () => {
    const base = uid('n16');
    const one = await openSession({ [alpha]: 0.85 }, {}, { sessionId: `${base}-b` });
    const two = await openSession({ [alpha]: 0.85 }, {}, { sessionId: base });
    touched.push(one.workflowId, two.workflowId);
    // The first saga is still running when the second starts: under the old ids, the second found its id taken.
    const a = await one.startSaga({
      sagaId: 'c',
      steps: [{ actionId: 'draft', agentDid: alpha, input: { delayMs: 3000 } }],
    });
    touched.push(a.workflowId);
    const b = await two.startSaga({ sagaId: 'b-c', steps: [{ actionId: 'draft', agentDid: alpha }] });
    touched.push(b.workflowId);

    assert.equal(a.workflowId, sagaWorkflowId(one.id, 'c'));
    assert.equal(b.workflowId, sagaWorkflowId(two.id, 'b-c'));
    assert.notEqual(a.workflowId, b.workflowId, 'two sagas of two sessions have two workflow ids');
    for (const [session, saga] of [
      [one, a],
      [two, b],
    ] as const) {
      const snap = await session.sagaResult(saga.sagaId);
      assert.equal(snap.saga.state, 'completed', snap.error);
      assert.equal(snap.sessionId, session.id);
      assert.equal(snap.workflowId, saga.workflowId);
      const records = await until(
        () => session.sagaRecords(),
        (r) => r.length === 1 && r[0].state === 'completed',
        `${session.id} to learn its saga's outcome`,
      );
      assert.equal(records[0].workflowId, saga.workflowId, "the session's record names the saga's workflow");
    }

    // Each step acted once, under a key of its own saga's workflow.
    const keys = [a, b].map((saga) =>
      (calls[saga.workflowId] ?? []).filter((c) => c.phase === 'execute').map((c) => c.key),
    );
    assert.deepEqual(keys, [[`${a.workflowId}/step-1/execute`], [`${b.workflowId}/step-1/execute`]]);
    assert.notEqual(keys[0]![0], keys[1]![0], 'the idempotency keys differ');

    // The lists read each saga's id back from its workflow id and its session's.
    const { client, taskQueue } = await rawClient();
    for (const [session, saga] of [
      [one, a],
      [two, b],
    ] as const) {
      const rows = await until(
        () => listSagas(client, taskQueue, { sessionId: session.id }),
        (r) => r.length === 1,
        `the visibility store to list ${session.id}'s saga`,
      );
      assert.deepEqual([rows[0]!.sagaId, rows[0]!.workflowId], [saga.sagaId, saga.workflowId]);
    }

    // The typed client finds a saga by id under the workflow its session started, not a squatter's.
    const hv = await hypervisor();
    assert.equal((await hv.session(one.id).saga('c')).handle.workflowId, a.workflowId);
    assert.equal((await hv.session(two.id).saga('b-c')).handle.workflowId, b.workflowId);
    const squatter = await client.workflow.start('sagaWorkflow', {
      taskQueue: `${base}-nobody`,
      workflowId: sagaWorkflowId(two.id, 'ghost'),
      args: [{}],
    });
    try {
      await assert.rejects(hv.session(two.id).saga('ghost'), (e) => isHypervisorError(e, 'SAGA_NOT_FOUND'));
    } finally {
      await squatter.terminate();
    }
  });

  it("N16: a session recorded before keeps its sagas' old ids on replay; the new id would not replay", async () => {
    const bundle = await workflowBundle();
    for (const name of RECORDED) {
      const json = fs.readFileSync(path.join(FIXTURES, `${name}.json`), 'utf8');
      const history = historyFromJSON(JSON.parse(json));
      const starts = (history.events ?? [])
        .filter((e) => e.eventType === EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED)
        .map((e) => e.startChildWorkflowExecutionInitiatedEventAttributes!);
      assert.ok(starts.length > 0, `${name} starts a saga`);
      const renamed: [string, string][] = starts.map((s) => {
        const input = defaultPayloadConverter.fromPayload<{ sessionId: string; sagaId: string }>(
          s.input!.payloads![0]!,
        );
        assert.equal(s.workflowId, `hv-saga-${input.sessionId}-${input.sagaId}`, `${name}: recorded with the old id`);
        return [s.workflowId!, sagaWorkflowId(input.sessionId, input.sagaId)];
      });
      // As recorded: the session starts its sagas under the old ids again.
      await Worker.runReplayHistory({ workflowBundle: bundle, replayName: name }, history, name);
      // The same history with the new ids: the code, without the patch's marker, does not produce it.
      const tampered = renamed.reduce((text, [old, now]) => text.split(`"${old}"`).join(`"${now}"`), json);
      await assert.rejects(
        Worker.runReplayHistory(
          { workflowBundle: bundle, replayName: `${name}-renamed` },
          historyFromJSON(JSON.parse(tampered)),
          `${name}-renamed`,
        ),
        (err: unknown) => err instanceof DeterminismViolationError && /Child workflow id/.test((err as Error).message),
        `${name} with the new ids must not replay`,
      );
    }
  });
});
