/**
 * The compact step task (workflows/saga/stepTask.ts, activities/stepTask.ts): what the saga leaves out, the
 * activity puts back — the same task, the same checks — and a task an older saga scheduled, with every
 * field, still runs (a rollout: an activity scheduled by an older worker runs on a newer one).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { ApplicationFailure } from '@temporalio/activity';
import { stepActivities, type StepTask } from '../../activities/steps';
import { registerStepHandler, type StepContext } from '../../activities/handlers';
import { CompensationTaskSchema, StepTaskSchema, withSagaIds } from '../../activities/stepTask';
import { SAGA_WORKFLOW, sagaWorkflowId } from '../../src/contract/messages';
import { legacySagaWorkflowId, sagaIdsOfWorkflowId, sessionWorkflowId } from '../../src/contract/messageNames';

const FIXTURE = path.resolve(__dirname, '..', 'fixtures', 'histories', 'saga-format-2.json');
/** The executeStep inputs a saga of the full format scheduled (recorded before the compact task). */
function recordedTasks(): Record<string, unknown>[] {
  const history = JSON.parse(fs.readFileSync(FIXTURE, 'utf8'));
  return history.events
    .map((e: any) => e.activityTaskScheduledEventAttributes)
    .filter((a: any) => a?.activityType?.name === 'executeStep')
    .map((a: any) => JSON.parse(Buffer.from(a.input.payloads[0].data, 'base64').toString()));
}
/**
 * The same task as the compact builder sends it: no digest, no undo API, no defaults, no unused reversibility,
 * no ids (its saga's workflow id names them).
 */
function compactOf(full: Record<string, unknown>): Record<string, unknown> {
  const { digest: _d, undoApi: _u, reversibility: _r, readOnly, sessionId: _s, sagaId: _g, ...rest } = full;
  return { ...rest, ...(readOnly ? { readOnly } : {}) };
}
/** The workflow id of the saga that scheduled a recorded task. */
const sagaOf = (full: Record<string, unknown>) => sagaWorkflowId(String(full.sessionId), String(full.sagaId));

const nothing = () => undefined;
/** The failures asserted here are expected: the activity's own log of them is not. */
const quiet = { log: nothing, trace: nothing, debug: nothing, info: nothing, warn: nothing, error: nothing };

describe('compact step task', () => {
  const recorded = recordedTasks();
  const first = recorded[0]!;

  it('a compact task parses to the full task the saga recorded: the derived digest is the recorded one', () => {
    assert.ok(recorded.length >= 3);
    for (const full of recorded) {
      const fromFull = StepTaskSchema.parse(full);
      const fromCompact = StepTaskSchema.parse(withSagaIds(compactOf(full), sagaOf(full)));
      assert.equal(fromCompact.digest, full.digest, `digest of ${String(full.stepId)}`);
      const { undoApi: _u, reversibility: _r, ...same } = fromFull;
      assert.deepEqual({ ...fromCompact, undoApi: null }, { ...same, undoApi: null });
      assert.equal(fromCompact.readOnly, false);
      assert.ok(JSON.stringify(compactOf(full)).length < JSON.stringify(full).length - 100);
    }
  });

  it('an old full task keeps what it sent (its digest, its undo API, its reversibility)', () => {
    const full: Record<string, unknown> = { ...first, digest: 'f'.repeat(64), readOnly: true };
    const task = StepTaskSchema.parse(full);
    assert.equal(task.digest, 'f'.repeat(64));
    assert.equal(task.undoApi, full.undoApi);
    assert.equal(task.reversibility, full.reversibility);
    assert.equal(task.readOnly, true);
  });

  it("a task without ids reads them from its saga's workflow id — only that id form, and never one half of them", () => {
    const ids = { sessionId: String(first.sessionId), sagaId: String(first.sagaId) };
    assert.deepEqual(sagaIdsOfWorkflowId(sagaOf(first)), ids);
    for (const other of [
      legacySagaWorkflowId(ids.sessionId, ids.sagaId),
      sessionWorkflowId(ids.sessionId),
      'hv-saga-s/g/h',
      'hv-saga-/g',
    ])
      assert.equal(sagaIdsOfWorkflowId(other), undefined, other);
    const compact = compactOf(first);
    assert.deepEqual(withSagaIds(compact, sagaOf(first)), { ...compact, ...ids });
    // A legacy id, a session's (N7: the session names the saga itself), or none: nothing put back, the parse names it.
    for (const workflowId of [
      legacySagaWorkflowId(ids.sessionId, ids.sagaId),
      sessionWorkflowId(ids.sessionId),
      undefined,
    ])
      assert.match(
        JSON.stringify(StepTaskSchema.safeParse(withSagaIds(compact, workflowId)).error?.issues),
        /sessionId/,
        String(workflowId),
      );
    // A task that gives either id keeps what it gave (the other is not taken from the workflow id).
    assert.deepEqual(withSagaIds({ ...compact, sagaId: 'own' }, sagaOf(first)), { ...compact, sagaId: 'own' });
  });

  it('an undo without its execute API or digest parses (it runs its undo API only)', () => {
    const { executeApi: _e, digest: _d, ...undo }: Record<string, unknown> = { ...first, result: { ok: 1 } };
    const task = CompensationTaskSchema.parse(undo);
    assert.equal(task.executeApi, '');
    assert.equal(task.digest, first.digest);
    assert.deepEqual(task.result, { ok: 1 });
  });

  describe('executeStep, with a compact and with an old full task', () => {
    const ran: { input: unknown; key: string }[] = [];
    registerStepHandler('test.stepTask', {
      async execute(input: unknown, ctx: StepContext) {
        ran.push({ input, key: ctx.idempotencyKey });
        return { ok: true };
      },
      async undo(input: unknown, result: unknown, ctx: StepContext) {
        ran.push({ input: { input, result }, key: ctx.idempotencyKey });
        return null;
      },
    });
    const gated: StepTask[] = [];
    const activities = stepActivities(async (_id, task) => {
      gated.push(task);
      return { allowed: true } as never;
    });
    const base = { ...first, executeApi: 'handler:test.stepTask', undoApi: 'handler:test.stepTask' } as Record<
      string,
      unknown
    >;
    const env = (attempt: number) =>
      new MockActivityEnvironment(
        {
          attempt,
          workflowType: SAGA_WORKFLOW,
          workflowExecution: { workflowId: sagaWorkflowId(String(base.sessionId), String(base.sagaId)), runId: 'r' },
        },
        { logger: quiet },
      );

    it('runs both alike: the same input, the same idempotency key; a retry is gated with the derived digest', async () => {
      ran.length = 0;
      for (const task of [base, compactOf(base)]) {
        const out = await env(2).run(activities.executeStep, task as never);
        assert.deepEqual(out, { result: { ok: true }, attempt: 2 });
      }
      assert.equal(ran.length, 2);
      assert.deepEqual(ran[0], ran[1]);
      assert.equal(gated.length, 2);
      assert.equal(gated[1]!.digest, base.digest);
      const { reversibility: _r, ...gatedFull } = gated[0]! as Record<string, unknown>;
      assert.deepEqual(gated[1], { ...gatedFull, undoApi: null });
    });

    it('a compact task of a read-only action still runs only a read-only handler', async () => {
      await assert.rejects(
        env(1).run(activities.executeStep, { ...compactOf(base), readOnly: true } as never),
        (err: unknown) => err instanceof ApplicationFailure && err.type === 'InvalidStep',
      );
    });

    it('a task that does not parse is refused before it acts, naming the field', async () => {
      ran.length = 0;
      const { stepId: _s, ...noStep } = compactOf(base);
      await assert.rejects(
        env(1).run(activities.executeStep, noStep as never),
        (err: unknown) => err instanceof ApplicationFailure && err.type === 'InvalidStep' && /stepId/.test(err.message),
      );
      assert.equal(ran.length, 0);
    });

    it('undoes an old full task and a compact one alike', async () => {
      ran.length = 0;
      const full: Record<string, unknown> = { ...base, result: { ok: true } };
      const { executeApi: _e, digest: _d, ...compact } = full;
      for (const task of [full, compact]) await env(1).run(activities.compensateStep, task as never);
      assert.equal(ran.length, 2);
      assert.deepEqual(ran[0], ran[1]);
      assert.match(ran[0]!.key, /\/undo$/);
    });
  });
});
