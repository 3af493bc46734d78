/**
 * Parallel groups (SPEC §14) as an attacker sends them (SPEC §11.6): a
 * malformed group, an oversized one, a policy no group can meet, a nested
 * group, ids that are object members, a branch naming an agent not in the
 * session. Each is refused naming what was wrong — no history, no delta — or
 * processed correctly; no workflow task fails.
 */
import assert from 'node:assert/strict';
import { signedBy } from '../../src/contract/messages';
import { StartSagaRequestSchema } from '../../src/contract';
import {
  expectNoTrace,
  expectSoundAudit,
  handlerCalls,
  mark,
  openSession,
  refused,
  workflowTaskFailures,
  type RawSession,
} from './raw';

const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';
const stranger = 'did:mesh:stranger';
const draft = (agentDid: string, extra: Record<string, unknown> = {}) => ({ actionId: 'draft', agentDid, ...extra });

describe('parallel groups: malformed, oversized and hostile input', function () {
  this.timeout(180_000);
  const touched: string[] = [];
  let session: RawSession;
  before(async () => {
    session = await openSession({ [alpha]: 0.85, [beta]: 0.8 });
    touched.push(session.workflowId);
  });
  after(async () => assert.deepEqual(await workflowTaskFailures(touched), [], 'no workflow task failed'));

  const cases: [string, unknown[], RegExp][] = [
    [
      'parallel is not a list',
      [{ parallel: 'draft', policy: 'ALL' }],
      /steps\.0: invalid parallel group: parallel: .*array/,
    ],
    [
      'an unknown policy',
      [{ parallel: [draft(alpha)], policy: 'SOME' }],
      /steps\.0: invalid parallel group: policy: must be "ALL", "MAJORITY", "ANY" or \{atLeast: k\}/,
    ],
    ['an empty group', [{ parallel: [], policy: 'ANY' }], /at least one branch/],
    ['an unknown key on a group', [{ parallel: [draft(alpha)], policy: 'ALL', onFail: 'x' }], /onFail/],
    [
      'atLeast above the group size',
      [{ parallel: [draft(alpha), draft(beta)], policy: { atLeast: 3 } }],
      /atLeast 3 is more than the group's 2 branches/,
    ],
    ['atLeast 0', [{ parallel: [draft(alpha)], policy: { atLeast: 0 } }], /atLeast must be ≥ 1/],
    [
      'a nested group',
      [{ parallel: [{ parallel: [draft(alpha)], policy: 'ALL' }], policy: 'ALL' }],
      /groups do not nest/,
    ],
    [
      '17 branches',
      [{ parallel: Array.from({ length: 17 }, () => draft(alpha)), policy: 'ANY' }],
      /at most 16 branches/,
    ],
    [
      'more than 50 steps counting branches',
      Array.from({ length: 4 }, () => ({ parallel: Array.from({ length: 16 }, () => draft(alpha)), policy: 'ANY' })),
      /at most 50 steps, branches of its groups included \(has 64\)/,
    ],
    [
      'a branch id that repeats a step id',
      [draft(alpha, { stepId: 'x' }), { parallel: [draft(beta, { stepId: 'x' })], policy: 'ALL' }],
      /steps\.1\.parallel\.0\.stepId: duplicate step id x/,
    ],
    [
      'a group id that repeats a branch id',
      [{ groupId: 'g', parallel: [draft(alpha, { stepId: 'g' })], policy: 'ALL' }],
      /duplicate step id g/,
    ],
    ['a branch id with a path trick', [{ parallel: [draft(alpha, { stepId: '../x' })], policy: 'ALL' }], /stepId/],
  ];
  for (const [what, steps, names] of cases) {
    it(`refuses ${what}, naming it, and leaves no trace`, async () => {
      const m = await mark(session);
      await refused(session.startSaga({ steps }), 'INVALID_INPUT', names);
      await expectNoTrace(m);
    });
  }

  it('ids that are object members (__proto__, constructor) are plain ids: the group runs and completes', async () => {
    const { sagaId, workflowId, digests } = await session.startSaga({
      steps: [
        { groupId: '__proto__', parallel: [draft(alpha, { stepId: 'constructor' }), draft(beta)], policy: 'ALL' },
      ],
    });
    touched.push(workflowId);
    assert.deepEqual(Object.keys(digests).sort(), ['__proto__.b2', 'constructor']);
    const snap = await session.sagaResult(sagaId);
    assert.equal(snap.saga.state, 'completed', JSON.stringify(snap.saga.groups));
    assert.equal(snap.saga.groups[0].groupId, '__proto__');
    assert.deepEqual(handlerCalls(workflowId).sort(), ['__proto__.b2', 'constructor']);
  });

  it('a branch naming an agent not in the session is denied at its gate; ANY is met by the other, ALL fails without acting', async () => {
    const any = await session.startSaga({ steps: [{ parallel: [draft(stranger), draft(beta)], policy: 'ANY' }] });
    const all = await session.startSaga({
      steps: [{ parallel: [draft(stranger), draft(beta, { input: { delayMs: 300 } })], policy: 'ALL' }],
    });
    touched.push(any.workflowId, all.workflowId);
    const met = await session.sagaResult(any.sagaId);
    assert.equal(met.saga.state, 'completed');
    assert.match(met.saga.steps[0].error, /RING_VIOLATION/);
    assert.deepEqual(handlerCalls(any.workflowId), ['g1.b2']);
    const failed = await session.sagaResult(all.sagaId);
    assert.ok(['failed', 'compensated'].includes(failed.saga.state), failed.saga.state);
    assert.equal(failed.failedStepId, 'g1.b1');
    assert.match(failed.error, /group g1 cannot meet its policy ALL/);
    // The sibling that was running when the group failed was cancelled, or had committed and is undone.
    for (const id of handlerCalls(all.workflowId)) assert.deepEqual(handlerCalls(all.workflowId, 'undo'), [id]);
    await expectSoundAudit(session);
  });

  it("a group's branch agents are signers of the saga's start (every agent of every branch signs in a did:key session)", () => {
    const req = StartSagaRequestSchema.parse({
      steps: [draft(alpha), { parallel: [draft(beta), draft(stranger)], policy: 'MAJORITY' }],
    });
    assert.deepEqual(signedBy.startSaga(req), { all: [alpha, beta, stranger] });
  });
});
