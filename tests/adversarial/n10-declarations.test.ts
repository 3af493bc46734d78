/**
 * N10 (issue 24): a later join lowered another agent's declared costUnits, ω
 * and undo window — a budget bypass: the registry kept the latest declaration
 * unless the older one was stricter by ring. SPEC §11.8: the first declaration
 * of an action in a session is fixed; a later join may repeat it, and a
 * different one is refused, naming the fields, before it enters history.
 */
import assert from 'node:assert/strict';
import { ATTACKER, expectNoTrace, mark, openSession, refused, workflowTaskFailures } from './raw';

const alpha = 'did:mesh:alpha';
const TEST_STEP = { executeApi: 'handler:test.step', undoApi: 'handler:test.step' };
const PAY = {
  actionId: 'pay',
  reversibility: 'FULL',
  undoWindowSeconds: 600,
  costUnits: 10,
  riskWeight: 0.3,
  ...TEST_STEP,
};

describe('N10 — the first declaration of an action is fixed', function () {
  this.timeout(120_000);
  const touched: string[] = [];
  after(async () => assert.deepEqual(await workflowTaskFailures(touched), [], 'no workflow task failed'));

  it("N10: a later join cannot lower an action's cost, ω or undo window; the budget still counts the first declaration", async () => {
    const session = await openSession(
      { [alpha]: { sigma: 0.8, actions: [PAY] } },
      { controls: { budgets: { sessionCost: 15 } } },
      { activate: false },
    );
    touched.push(session.workflowId);
    const m = await mark(session);
    const changes: [Record<string, unknown>, RegExp][] = [
      [{ costUnits: 0 }, /costUnits 10/],
      [{ riskWeight: 0.1 }, /riskWeight 0\.3/],
      [{ undoWindowSeconds: 0 }, /undoWindowSeconds 600/],
      [{ reversibility: 'PARTIAL', riskWeight: undefined }, /level "FULL"/],
    ];
    for (const [change, names] of changes) {
      const failure = await refused(
        session.update('join', { agentDid: ATTACKER, sigmaRaw: 0.7, actions: [{ ...PAY, ...change }] }),
        'INVALID_INPUT',
        names,
      );
      assert.match(failure.message, /first declaration of an action is fixed/);
    }
    // Through the manifest, too (one path for every declaration), and twice within one join.
    const manifest = {
      agent_id: ATTACKER,
      trust_level: 'untrusted',
      trust_score: 1,
      actions: [{ ...PAY, costUnits: 0 }],
    };
    await refused(
      session.update('join', { agentDid: ATTACKER, sigmaRaw: 0.7, manifest }),
      'INVALID_INPUT',
      /manifest\.actions\.0: action pay .*costUnits 10/,
    );
    await refused(
      session.update('join', {
        agentDid: ATTACKER,
        sigmaRaw: 0.7,
        actions: [
          { ...PAY, actionId: 'pay-twice' },
          { ...PAY, actionId: 'pay-twice', costUnits: 1 },
        ],
      }),
      'INVALID_INPUT',
      /actions.1: action pay-twice .*earlier in this join/,
    );
    await expectNoTrace(m);

    // The same declaration again is fine.
    await session.update('join', { agentDid: 'did:mesh:beta', sigmaRaw: 0.8, actions: [PAY] });
    await session.update('activate');
    // The budget reserves what was first declared: one `pay` (10) fits a session cost budget of 15, a second does not.
    await session.startSaga({ steps: [{ actionId: 'pay', agentDid: alpha, input: { delayMs: 3_000 } }] });
    await refused(
      session.startSaga({ steps: [{ actionId: 'pay', agentDid: 'did:mesh:beta' }] }),
      'BUDGET_EXHAUSTED',
      'cost budget of 15',
    );
  });
});
