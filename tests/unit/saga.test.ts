import { runSagaLocally } from '../helpers/localSaga';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  addStep,
  commitStep,
  compensateStep,
  compensationPlan,
  createSaga,
  failCompensation,
  failStep,
  finishSaga,
  recordAttemptFailure,
  retryDelayMs,
  retryPolicyOf,
  SAGA_STATES,
  SAGA_TRANSITIONS,
  startCompensation,
  startStep,
  startStepCompensation,
  STEP_STATES,
  STEP_TRANSITIONS,
  transitionSaga,
  transitionStep,
  type SagaState,
  type StepStatus,
} from '../../src/core/saga';
import { isHypervisorError, type ErrorCode } from '../../src/core/errors';

const ALICE = 'did:mesh:alice';
const BOB = 'did:mesh:bob';

const rejects = (fn: () => unknown, code: ErrorCode, pattern: RegExp) =>
  assert.throws(fn, (e) => isHypervisorError(e, code) && pattern.test(e.message), `${code} ${pattern}`);

function saga(steps = 3, undo = true): SagaState {
  const s = createSaga({ sagaId: 'g1', sessionId: 's1', at: 0 });
  for (let i = 1; i <= steps; i++) {
    addStep(
      s,
      {
        stepId: `step${i}`,
        actionId: `act${i}`,
        agentDid: i % 2 ? ALICE : BOB,
        executeApi: `/do/${i}`,
        ...(undo ? { undoApi: `/undo/${i}` } : {}),
      },
      0,
    );
  }
  return s;
}

describe('saga: definitions', () => {
  it('fills SPEC defaults: timeout 300 s, 0 retries; Temporal retry defaults', () => {
    const s = saga(1);
    const step = s.steps[0]!;
    assert.equal(step.timeoutSeconds, 300);
    assert.equal(step.maxRetries, 0);
    assert.deepEqual(retryPolicyOf(step), {
      initialInterval: 1000,
      backoffCoefficient: 2,
      maximumInterval: 100_000,
      maximumAttempts: 1,
    });
    assert.equal(step.state, 'pending');
    assert.equal(s.state, 'running');
  });

  it('backs off like Temporal: initial × coefficient^(retry−1), capped', () => {
    const s = createSaga({ sagaId: 'g', sessionId: 's', at: 0 });
    const step = addStep(
      s,
      { stepId: 'x', actionId: 'a', agentDid: ALICE, maxRetries: 5, initialIntervalMs: 1000, maximumIntervalMs: 5000 },
      0,
    );
    assert.deepEqual(
      [1, 2, 3, 4].map((r) => retryDelayMs(step, r)),
      [1000, 2000, 4000, 5000],
    );
  });

  it('rejects invalid definitions naming the field, duplicates, and adding to a finished saga', () => {
    const s = saga(1);
    rejects(() => addStep(s, { stepId: 'x', actionId: 'a', agentDid: 'bob' }, 0), 'INVALID_INPUT', /agentDid/);
    rejects(
      () => addStep(s, { stepId: 'x', actionId: 'a', agentDid: BOB, timeoutSeconds: 0 }, 0),
      'INVALID_INPUT',
      /timeoutSeconds/,
    );
    rejects(
      () => addStep(s, { stepId: 'x', actionId: 'a', agentDid: BOB, maxRetries: -1 }, 0),
      'INVALID_INPUT',
      /maxRetries/,
    );
    rejects(
      () => addStep(s, { stepId: 'x', actionId: 'a', agentDid: BOB, timeout_seconds: 3 }, 0),
      'INVALID_INPUT',
      /timeout_seconds/,
    );
    rejects(
      () => addStep(s, { stepId: 'step1', actionId: 'a', agentDid: BOB }, 0),
      'INVALID_INPUT',
      /step1 already exists/,
    );
    rejects(() => createSaga({ sagaId: '', sessionId: 's', at: 0 }), 'INVALID_INPUT', /sagaId/);
    startStep(s, 'step1', 1);
    commitStep(s, 'step1', null, 1);
    finishSaga(s, 2);
    rejects(() => addStep(s, { stepId: 'y', actionId: 'a', agentDid: BOB }, 3), 'INVALID_TRANSITION', /completed/);
  });

  it('unknown steps are STEP_NOT_FOUND', () => {
    rejects(() => startStep(saga(1), 'nope', 1), 'STEP_NOT_FOUND', /nope/);
  });
});

describe('saga: the state machine', () => {
  it('every step transition not in the table throws INVALID_TRANSITION naming from, to and the allowed ones', () => {
    for (const from of STEP_STATES) {
      for (const to of STEP_STATES) {
        const s = saga(1);
        s.steps[0]!.state = from;
        const allowed = STEP_TRANSITIONS[from].includes(to);
        if (allowed) {
          transitionStep(s, 'step1', to, 1);
          assert.equal(s.steps[0]!.state, to);
        } else {
          const expectAllowed = STEP_TRANSITIONS[from].length
            ? STEP_TRANSITIONS[from].join(', ')
            : 'none \\(terminal\\)';
          rejects(
            () => transitionStep(s, 'step1', to, 1),
            'INVALID_TRANSITION',
            new RegExp(`from ${from} to ${to}; allowed from ${from}: ${expectAllowed}$`),
          );
          assert.equal(s.steps[0]!.state, from);
        }
      }
    }
  });

  it('every saga transition not in the table throws INVALID_TRANSITION', () => {
    for (const from of SAGA_STATES) {
      for (const to of SAGA_STATES) {
        const s = saga(0);
        s.state = from;
        if (SAGA_TRANSITIONS[from].includes(to)) {
          transitionSaga(s, to, 1);
          assert.equal(s.state, to);
        } else {
          rejects(
            () => transitionSaga(s, to, 1),
            'INVALID_TRANSITION',
            new RegExp(`saga g1 cannot go from ${from} to ${to}`),
          );
        }
      }
    }
  });

  it('the tables are exactly SPEC §6 (with [resolved]: a failed step of unknown outcome is compensated; SPEC §14: an operator retries or skips a failed step)', () => {
    const pairs = (t: Readonly<Record<string, readonly string[]>>) =>
      Object.entries(t)
        .flatMap(([f, ts]) => ts.map((x) => `${f}->${x}`))
        .sort();
    assert.deepEqual(pairs(STEP_TRANSITIONS), [
      'committed->compensating',
      'compensating->compensated',
      'compensating->compensation_failed',
      'executing->committed',
      'executing->failed',
      'failed->compensating',
      'failed->pending',
      'failed->skipped',
      'pending->executing',
      'skipped->compensating',
    ]);
    assert.deepEqual(pairs(SAGA_TRANSITIONS), [
      'compensating->compensated',
      'compensating->escalated',
      'compensating->failed',
      'failed->compensating',
      'running->compensating',
      'running->completed',
      'running->failed',
    ]);
  });

  it('no sequence of saga events makes a transition SPEC forbids (property)', () => {
    type Ev = [op: number, step: number];
    const ops = [
      (s: SagaState, id: string) => startStep(s, id, 1),
      (s: SagaState, id: string) => commitStep(s, id, 'ok', 1),
      (s: SagaState, id: string) => failStep(s, id, 'boom', 1),
      (s: SagaState, id: string) => recordAttemptFailure(s, id, 'flaky', 1),
      (s: SagaState) => startCompensation(s, 1),
      (s: SagaState, id: string) => startStepCompensation(s, id, 1),
      (s: SagaState, id: string) => compensateStep(s, id, 1),
      (s: SagaState, id: string) => failCompensation(s, id, 'undo broke', 1),
      (s: SagaState) => finishSaga(s, 1),
      (s: SagaState, id: string) => transitionStep(s, id, STEP_STATES[id.length % STEP_STATES.length] as StepStatus, 1),
    ];
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(ops.length - 1), fc.nat(3)) as fc.Arbitrary<Ev>, { maxLength: 40 }),
        fc.boolean(),
        (events, undo) => {
          const s = saga(3, undo);
          s.steps[1]!.maxRetries = 1;
          for (const [op, i] of events) {
            const before = JSON.stringify(s);
            try {
              (ops[op] as (s: SagaState, id: string) => unknown)(s, `step${i + 1}`); // step4 does not exist
            } catch (e) {
              assert.ok(
                isHypervisorError(e, 'INVALID_TRANSITION') || isHypervisorError(e, 'STEP_NOT_FOUND'),
                String(e),
              );
              assert.equal(JSON.stringify(s), before, 'a rejected event changes nothing');
            }
          }
          for (const t of s.log) {
            const table: Readonly<Record<string, readonly string[]>> =
              t.subject === 'saga' ? SAGA_TRANSITIONS : STEP_TRANSITIONS;
            assert.ok(table[t.from]?.includes(t.to), `${t.subject} ${t.from} -> ${t.to}`);
          }
          // The log replays to the current states.
          const replayed = new Map<string, string>([
            ['g1', 'running'],
            ['step1', 'pending'],
            ['step2', 'pending'],
            ['step3', 'pending'],
          ]);
          for (const t of s.log) {
            assert.equal(replayed.get(t.id), t.from);
            replayed.set(t.id, t.to);
          }
          assert.equal(replayed.get('g1'), s.state);
          for (const st of s.steps) assert.equal(replayed.get(st.stepId), st.state);
        },
      ),
      { numRuns: 400 },
    );
  });
});

describe('saga: execution and compensation', () => {
  it('all steps committed → completed', () => {
    const s = saga(2);
    for (const id of ['step1', 'step2']) {
      startStep(s, id, 1);
      commitStep(s, id, { id }, 2);
    }
    assert.deepEqual(finishSaga(s, 3), { state: 'completed', escalations: [] });
    assert.equal(s.finishedAt, 3);
    assert.deepEqual(
      s.steps.map((x) => x.result),
      [{ id: 'step1' }, { id: 'step2' }],
    );
  });

  it('retries up to maxRetries, then fails with the last error', () => {
    const s = createSaga({ sagaId: 'g', sessionId: 's', at: 0 });
    addStep(s, { stepId: 'x', actionId: 'a', agentDid: ALICE, maxRetries: 2 }, 0);
    startStep(s, 'x', 1);
    assert.deepEqual(recordAttemptFailure(s, 'x', 'e1', 2), { retry: true, attempt: 2, delayMs: 1000 });
    assert.deepEqual(recordAttemptFailure(s, 'x', 'e2', 3), { retry: true, attempt: 3, delayMs: 2000 });
    assert.deepEqual(recordAttemptFailure(s, 'x', 'e3', 4), { retry: false });
    assert.equal(s.steps[0]!.state, 'failed');
    assert.equal(s.steps[0]!.error, 'e3');
    assert.equal(s.steps[0]!.attempts, 3);
  });

  it('compensation walks committed steps in reverse commit order, not array order', () => {
    const s = saga(3);
    for (const id of ['step3', 'step1', 'step2']) startStep(s, id, 1);
    commitStep(s, 'step3', null, 2);
    commitStep(s, 'step1', null, 3);
    failStep(s, 'step2', 'boom', 4);
    assert.deepEqual(
      compensationPlan(s).map((x) => x.stepId),
      ['step1', 'step3'],
    );
  });

  it('a clean rollback ends compensated ([resolved]), distinct from completed', () => {
    const s = saga(3);
    startStep(s, 'step1', 1);
    commitStep(s, 'step1', null, 1);
    startStep(s, 'step2', 1);
    failStep(s, 'step2', 'boom', 2);
    rejects(() => finishSaga(s, 2), 'INVALID_TRANSITION', /compensate the steps that may have acted first/);
    startCompensation(s, 3);
    rejects(() => startStep(s, 'step3', 3), 'INVALID_TRANSITION', /only while running/);
    assert.equal(startStepCompensation(s, 'step1', 3), true);
    rejects(() => finishSaga(s, 3), 'INVALID_TRANSITION', /step1 is compensating/);
    compensateStep(s, 'step1', 4);
    assert.deepEqual(finishSaga(s, 5), { state: 'compensated', escalations: [] });
    assert.equal(s.steps[2]!.state, 'pending');
  });

  it('a step without an undo API is compensation_failed, and the saga escalates naming its agent', () => {
    const s = saga(2, false);
    startStep(s, 'step1', 1);
    commitStep(s, 'step1', null, 1);
    startStep(s, 'step2', 1);
    failStep(s, 'step2', 'boom', 2);
    startCompensation(s, 3);
    assert.equal(startStepCompensation(s, 'step1', 3), false);
    assert.equal(s.steps[0]!.state, 'compensation_failed');
    assert.match(s.steps[0]!.error!, /no undo API/);
    const r = finishSaga(s, 4);
    assert.equal(r.state, 'escalated');
    assert.deepEqual(
      r.escalations.map((e) => [e.stepId, e.agentDid]),
      [['step1', ALICE]],
    );
  });

  it('an undo that throws is compensation_failed → escalated', () => {
    const s = saga(2);
    startStep(s, 'step1', 1);
    commitStep(s, 'step1', null, 1);
    startStep(s, 'step2', 1);
    commitStep(s, 'step2', null, 1);
    startCompensation(s, 2, 'cancelled');
    startStepCompensation(s, 'step2', 2);
    failCompensation(s, 'step2', 'undo timed out', 3);
    startStepCompensation(s, 'step1', 3);
    compensateStep(s, 'step1', 4);
    const r = finishSaga(s, 5);
    assert.equal(r.state, 'escalated');
    assert.deepEqual(r.escalations, [{ stepId: 'step2', actionId: 'act2', agentDid: BOB, error: 'undo timed out' }]);
  });

  it('a failure with nothing committed → failed', () => {
    const s = saga(2);
    startStep(s, 'step1', 1);
    failStep(s, 'step1', 'boom', 2);
    assert.deepEqual(finishSaga(s, 3), { state: 'failed', escalations: [] });
    rejects(() => finishSaga(s, 4), 'INVALID_TRANSITION', /already failed/);
  });

  it('cannot finish with work unfinished', () => {
    const s = saga(2);
    rejects(() => finishSaga(s, 1), 'INVALID_TRANSITION', /step1 is still pending/);
    startStep(s, 'step1', 1);
    rejects(() => finishSaga(s, 1), 'INVALID_TRANSITION', /step1 is executing/);
  });

  it('state and log are plain JSON', () => {
    const s = saga(2);
    startStep(s, 'step1', 1);
    commitStep(s, 'step1', { n: 1 }, 2);
    const copy = JSON.parse(JSON.stringify(s)) as SagaState;
    assert.deepEqual(copy, s);
    startStep(copy, 'step2', 3);
    commitStep(copy, 'step2', null, 4);
    assert.equal(finishSaga(copy, 5).state, 'completed');
  });
});

describe('saga: runSagaLocally', () => {
  it('runs every step with a no-op executor → completed', async () => {
    const s = saga(3);
    const seen: string[] = [];
    const r = await runSagaLocally(
      s,
      (step) => {
        seen.push(step.stepId);
        return `${step.stepId} done`;
      },
      undefined,
      7,
    );
    assert.deepEqual(r, { state: 'completed', failedStepId: null, error: null, escalations: [] });
    assert.deepEqual(seen, ['step1', 'step2', 'step3']);
    assert.ok(s.log.every((t) => t.at === 7));
  });

  it('retries, then compensates the committed steps in reverse → compensated', async () => {
    const s = saga(3);
    s.steps[2]!.maxRetries = 2;
    let tries = 0;
    const undone: string[] = [];
    const r = await runSagaLocally(
      s,
      async (step) => {
        if (step.stepId === 'step3') {
          tries++;
          throw new Error(`fail ${tries}`);
        }
      },
      (step) => {
        undone.push(step.stepId);
      },
    );
    assert.equal(tries, 3);
    assert.deepEqual(r, { state: 'compensated', failedStepId: 'step3', error: 'fail 3', escalations: [] });
    assert.deepEqual(undone, ['step2', 'step1']);
  });

  it('an undo failure escalates; later undos still run', async () => {
    const s = saga(3);
    const undone: string[] = [];
    const r = await runSagaLocally(
      s,
      (step) => {
        if (step.stepId === 'step3') throw new Error('boom');
      },
      (step) => {
        if (step.stepId === 'step2') throw new Error('undo broke');
        undone.push(step.stepId);
      },
    );
    assert.equal(r.state, 'escalated');
    assert.deepEqual(r.escalations, [{ stepId: 'step2', actionId: 'act2', agentDid: BOB, error: 'undo broke' }]);
    assert.deepEqual(undone, ['step1']);
  });

  it('is deterministic: the same saga and executors give the same state', async () => {
    const run = async () => {
      const s = saga(3);
      await runSagaLocally(
        s,
        (step) => {
          if (step.stepId === 'step2') throw new Error('x');
          return 1;
        },
        () => undefined,
        5,
      );
      return s;
    };
    assert.deepEqual(await run(), await run());
  });
});
