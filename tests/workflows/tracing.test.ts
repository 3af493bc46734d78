/**
 * Traces (README: Metrics and traces): a worker given a span processor traces
 * sessions, sagas, gates, steps and compensations. Spans go to an in-memory
 * exporter; one saga waits for an approval while its worker is shut down and a
 * new one takes over, and no span may come out twice or lose its parent.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { makeWorkflowExporter } from '@temporalio/interceptors-opentelemetry';
import { Resource } from '@opentelemetry/resources';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { Worker } from '@temporalio/worker';
import { HypervisorClient, type SessionHandle } from '../../src/client';
import { ATTR, SPANS } from '../../src/core/observability';
import { createHypervisorWorker, workflowBundle } from '../../worker/worker';
import { testEnv } from '../helpers/env';
import { eventually, uniqueId } from '../helpers/hv';
import { ACTIONS, SRE_WITNESSES } from '../helpers/sessions';

const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';
const high = 'did:mesh:high';

const exporter = new InMemorySpanExporter();
const spanProcessor = new SimpleSpanProcessor(exporter);

/** A worker of this test's own task queue: traced into the in-memory exporter, or not traced at all. */
async function startWorker(taskQueue: string, traced = true) {
  const env = await testEnv();
  const worker = await createHypervisorWorker({
    connection: env.nativeConnection,
    namespace: env.namespace,
    taskQueue,
    store: env.store,
    retentionSchedule: false,
    ...(traced ? { tracing: { spanProcessor } } : {}),
  });
  const running = worker.run();
  return {
    stop: async () => {
      worker.shutdown();
      await running;
    },
  };
}

async function session(hv: HypervisorClient, agents: Record<string, number>): Promise<SessionHandle> {
  const s = await hv.createSession({
    sessionId: uniqueId('trace'),
    creatorDid: 'did:mesh:admin',
    config: { sreWitnesses: SRE_WITNESSES, consensusQuorum: 1 },
  });
  for (const [agentDid, sigmaRaw] of Object.entries(agents)) await s.join({ agentDid, sigmaRaw, actions: ACTIONS });
  await s.activate();
  return s;
}

const id = (s: ReadableSpan) => s.spanContext().spanId;
const trace = (s: ReadableSpan) => s.spanContext().traceId;
const named = (spans: ReadableSpan[], name: string) => spans.filter((s) => s.name === name);
const childrenOf = (spans: ReadableSpan[], parent: ReadableSpan, name?: string) =>
  spans.filter((s) => s.parentSpanId === id(parent) && (name === undefined || s.name === name));
function only<T>(items: T[], what: string): T {
  assert.equal(items.length, 1, `exactly one ${what}, found ${items.length}`);
  return items[0]!;
}

describe('traces: sessions, sagas, gates, steps and compensations', function () {
  this.timeout(240_000);

  it('gives each saga one trace of parent and child spans, with no duplicate after a worker restart mid-saga', async () => {
    const env = await testEnv();
    const taskQueue = `${env.taskQueue}-tracing`;
    const hv = new HypervisorClient(env.client, taskQueue, env.store);
    exporter.reset();
    let worker = await startWorker(taskQueue);
    let undone: string[] = [];
    try {
      const s = await session(hv, { [alpha]: 0.85, [beta]: 0.8, [high]: 0.97 });
      const completed = await s.startSaga({
        sagaId: 'completes',
        steps: [
          { actionId: 'draft', agentDid: alpha },
          { actionId: 'publish', agentDid: beta },
        ],
      });
      assert.equal((await completed.result()).saga.state, 'completed');
      const compensating = await s.startSaga({
        sagaId: 'compensates',
        steps: [
          { actionId: 'draft', agentDid: alpha },
          { actionId: 'reserve', agentDid: beta },
          {
            actionId: 'publish',
            agentDid: alpha,
            input: { failAttempts: -1 },
            retry: { maximumAttempts: 2, initialIntervalSeconds: 0.1, backoffCoefficient: 1 },
          },
        ],
      });
      const compensated = await compensating.result();
      assert.equal(compensated.saga.state, 'compensated');
      undone = compensated.compensationOrder;

      // wire-money cannot be undone (ring 1): its step waits for an approval while the worker is replaced.
      const waiting = await s.startSaga({
        sagaId: 'waits',
        steps: [
          { actionId: 'draft', agentDid: alpha, input: { delayMs: 1000 } },
          { actionId: 'wire-money', agentDid: high },
        ],
      });
      // Queries run live only, never on replay: the spans opened after one must keep their ids when the saga replays.
      await eventually(
        () => waiting.state(),
        (snap) => snap.saga.steps[0]!.state === 'executing',
        'step 1 to run',
      );
      await eventually(
        () => waiting.state(),
        (snap) => snap.waiting?.stepId === 'step-2',
        'step 2 to wait for an approval',
      );
      await worker.stop();
      const beforeRestart = exporter.getFinishedSpans().length;
      worker = await startWorker(taskQueue);
      await s.approve({ sagaId: 'waits', stepId: 'step-2', approverDid: alpha });
      assert.equal((await waiting.result()).saga.state, 'completed');
      await eventually(
        async () => (await s.sagas()).every((g) => g.state !== 'running'),
        Boolean,
        'the session to record every saga',
      );
      assert.ok(exporter.getFinishedSpans().length > beforeRestart, 'the new worker exported the rest of the saga');
    } finally {
      await worker.stop();
    }

    const spans = exporter.getFinishedSpans();
    const ids = spans.map((s) => `${trace(s)}/${id(s)}`);
    assert.equal(new Set(ids).size, ids.length, 'no span was exported twice');

    const traces = new Map<string, string>();
    for (const sagaId of ['completes', 'compensates', 'waits']) {
      const run = only(
        named(spans, 'RunWorkflow:sagaWorkflow').filter((s) => s.attributes[ATTR.sagaId] === sagaId),
        `saga span of ${sagaId}`,
      );
      const inTrace = spans.filter((s) => trace(s) === trace(run));
      // One trace per saga: every span of the saga is in it, and no span of another saga.
      assert.deepEqual(
        spans.filter((s) => s.attributes[ATTR.sagaId] === sagaId && trace(s) !== trace(run)),
        [],
      );
      assert.deepEqual(
        inTrace.filter((s) => s.attributes[ATTR.sagaId] !== undefined && s.attributes[ATTR.sagaId] !== sagaId),
        [],
      );
      traces.set(sagaId, trace(run));
      // Every parent is in the trace (ids are stable across the restart), except the trace's root.
      const known = new Set(inTrace.map(id));
      const roots = inTrace.filter((s) => !s.parentSpanId || !known.has(s.parentSpanId));
      assert.deepEqual(
        roots.map((s) => s.name),
        ['HandleUpdate:startSaga'],
        `the trace of ${sagaId} has one root, the session's startSaga`,
      );
      assert.equal(
        only(childrenOf(inTrace, roots[0]!, 'StartChildWorkflow:sagaWorkflow'), 'child start').spanContext().spanId,
        run.parentSpanId,
      );

      for (const step of childrenOf(inTrace, run, SPANS.step)) {
        assert.equal(step.attributes[ATTR.sessionId], run.attributes[ATTR.sessionId]);
        const gate = only(childrenOf(inTrace, step, SPANS.gate), `gate of ${sagaId}/${step.attributes[ATTR.stepId]}`);
        for (const key of [ATTR.ringRequired, ATTR.decision, ATTR.sigmaEff, ATTR.agentDid, ATTR.rule])
          assert.notEqual(gate.attributes[key], undefined, key);
        assert.equal(gate.attributes[ATTR.agentDid], step.attributes[ATTR.agentDid]);
        assert.equal(gate.attributes[ATTR.gate], 'step');
        if (gate.attributes[ATTR.decision] !== 'allowed') continue;
        const start = only(childrenOf(inTrace, step, 'StartActivity:executeStep'), 'step activity start');
        assert.ok(
          childrenOf(inTrace, start, 'RunActivity:executeStep').length >= 1,
          'the attempt runs under its start',
        );
      }
    }
    assert.equal(new Set(traces.values()).size, 3, 'three sagas, three traces');

    const inSaga = (sagaId: string) => spans.filter((s) => trace(s) === traces.get(sagaId));
    const sagaRun = (sagaId: string) => only(named(inSaga(sagaId), 'RunWorkflow:sagaWorkflow'), 'saga span');

    // The saga that completed: two steps, each gated and allowed.
    const completedSteps = childrenOf(inSaga('completes'), sagaRun('completes'), SPANS.step);
    assert.deepEqual(completedSteps.map((s) => [s.attributes[ATTR.stepId], s.attributes[ATTR.stepState]]).sort(), [
      ['step-1', 'committed'],
      ['step-2', 'committed'],
    ]);

    // The saga that compensated: its retry was gated in the activity, and two undos ran under compensation spans.
    const comp = inSaga('compensates');
    const retryGate = only(
      named(comp, SPANS.gate).filter((s) => s.attributes[ATTR.gate] === 'retry'),
      'retry gate',
    );
    assert.equal(comp.find((s) => id(s) === retryGate.parentSpanId)?.name, 'RunActivity:executeStep');
    assert.equal(retryGate.attributes[ATTR.decision], 'allowed');
    const undos = childrenOf(comp, sagaRun('compensates'), SPANS.compensation);
    assert.ok(undone.includes('step-1') && undone.includes('step-2'));
    assert.deepEqual(
      undos.map((s) => [s.attributes[ATTR.stepId], s.attributes[ATTR.compensation]]).sort(),
      undone.map((stepId) => [stepId, 'ok']).sort(),
    );
    for (const undo of undos) only(childrenOf(comp, undo, 'StartActivity:compensateStep'), 'undo activity');

    // The saga that waited across the restart: one span each, the gate spanning the wait and both reads of the session's grant.
    const waits = inSaga('waits');
    const steps = childrenOf(waits, sagaRun('waits'), SPANS.step);
    assert.deepEqual(steps.map((s) => s.attributes[ATTR.stepId]).sort(), ['step-1', 'step-2']);
    const wire = only(
      steps.filter((s) => s.attributes[ATTR.stepId] === 'step-2'),
      'wire step',
    );
    const gate = only(childrenOf(waits, wire, SPANS.gate), 'wire gate');
    assert.deepEqual(
      [gate.attributes[ATTR.decision], gate.attributes[ATTR.ringRequired], gate.attributes[ATTR.agentDid]],
      ['allowed', 1, high],
    );
    assert.ok((gate.attributes[ATTR.sigmaEff] as number) > 0.95);
    assert.equal(
      childrenOf(waits, gate, 'StartActivity:readStepGrant').length,
      2,
      'asked the session before the wait and after the approval',
    );
  });

  it('keeps workflow randomness apart: a session moves between a tracing worker and a plain one with its audit chain intact', async () => {
    const env = await testEnv();
    const taskQueue = `${env.taskQueue}-tracing-switch`;
    const hv = new HypervisorClient(env.client, taskQueue, env.store);
    let worker = await startWorker(taskQueue, true);
    let s: SessionHandle;
    try {
      s = await session(hv, { [alpha]: 0.85 });
      await s.checkAction({ agentDid: alpha, actionId: 'draft' });
      await worker.stop();
      // The check is traced: the update's span, and the gate under it.
      const spans = exporter.getFinishedSpans().filter(
        (x) =>
          trace(x) ===
          trace(
            only(
              named(exporter.getFinishedSpans(), 'HandleUpdate:checkAction').filter(
                (u) => u.attributes.workflowId === s.handle.workflowId,
              ),
              'checkAction span',
            ),
          ),
      );
      const gate = only(named(spans, SPANS.gate), 'check gate');
      assert.equal(spans.find((x) => id(x) === gate.parentSpanId)?.name, 'HandleUpdate:checkAction');
      assert.deepEqual(
        [
          gate.attributes[ATTR.gate],
          gate.attributes[ATTR.decision],
          gate.attributes[ATTR.rule],
          gate.attributes[ATTR.agentDid],
        ],
        ['check_action', 'allowed', 'ok', alpha],
      );
      // The plain worker replays the session: its delta ids (uuid4) must be the ones the tracing worker drew.
      worker = await startWorker(taskQueue, false);
      await s.checkAction({ agentDid: alpha, actionId: 'publish' });
      await eventually(
        () => s.auditHead(),
        (h) => h.stored === h.deltaCount,
        'the audit store to accept every delta',
        20_000,
      );
      const { verification } = await s.verifyAudit();
      assert.equal(verification.ok, true, JSON.stringify(verification));
      await s.terminate();
    } finally {
      await worker.stop();
    }
  });

  it('replays every recorded history with the tracing bundle: spans add no command', async () => {
    const dir = path.resolve(__dirname, '..', 'fixtures', 'histories');
    const sinks = {
      exporter: makeWorkflowExporter(new SimpleSpanProcessor(new InMemorySpanExporter()), new Resource({})),
    };
    const histories = fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .map((file) => ({
        workflowId: file,
        history: historyFromJSON(JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'))),
      }));
    // One replay worker for them all (the SDK's batch replay), each history's outcome checked.
    let replayed = 0;
    for await (const result of Worker.runReplayHistories(
      { workflowBundle: await workflowBundle(true), sinks, replayName: 'fixtures-traced' },
      histories,
    )) {
      if (result.error) throw result.error;
      replayed++;
    }
    assert.equal(replayed, histories.length, 'every history replayed');
  });
});
