/**
 * Attack 7: requests racing `terminate` (SPEC §7 [resolved]). Termination
 * closes the session first; while its commitment is being anchored (an
 * activity — made slow here by an anchor service that takes 5 s), every
 * request that would add a delta is refused naming the state, a saga step
 * that commits records nothing, and the committed Merkle root covers every
 * delta of the session: no more, no fewer (`hv audit verify`).
 */
import assert from 'node:assert/strict';
import { verifyTrail } from '../../src/core/audit';
import { verifyCommitment } from '../../src/core/commitment';
import { generateDidKey } from '../../src/core/identity';
import { KeyRing, signRequest } from '../../src/client/keys';
import { bySre } from '../helpers/sre';
import {
  ACTIONS,
  SRE,
  acceptedUpdateIds,
  executedSteps,
  freshSagaCompletes,
  httpTool,
  openSession,
  refusal,
  sagaOutcome,
  until,
  workflowTaskFailures,
  type HttpTool,
} from './raw';

const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';
const gamma = 'did:mesh:gamma';
const delta = 'did:mesh:delta';

describe('adversarial: requests racing terminate (SPEC §7 [resolved])', function () {
  this.timeout(180_000);
  let anchor: HttpTool;
  let previousAnchorUrl: string | undefined;
  const touched: string[] = [];

  before(async () => {
    anchor = await httpTool({ delayMs: 5000, body: () => ({ txId: 'anchor-tx-1' }) });
    // The worker runs in this process: its anchor activity reads this at call time.
    previousAnchorUrl = process.env.HV_ANCHOR_URL;
    process.env.HV_ANCHOR_URL = `${anchor.base}/anchor`;
  });
  after(async () => {
    if (previousAnchorUrl === undefined) delete process.env.HV_ANCHOR_URL;
    else process.env.HV_ANCHOR_URL = previousAnchorUrl;
    await anchor.close();
    assert.deepEqual(await workflowTaskFailures(touched), [], 'no workflow task failed');
  });

  it('7. leave, checkAction, evidence and a committing step racing terminate: refused naming the state, and the committed root covers every delta', async () => {
    // A drift report is signed by a configured reporter (SPEC §11.9): this one is refused only for the state.
    const reporter = generateDidKey();
    const session = await openSession(
      { [alpha]: 0.85, [beta]: 0.8, [gamma]: 0.8, [delta]: 0.97 },
      { driftReporters: [reporter.did] },
    );
    touched.push(session.workflowId);
    await session.update('vfsWrite', { agentDid: alpha, path: 'notes.txt', content: 'before' });
    const bond = await session.update('vouch', { voucher: gamma, vouchee: alpha });
    // A saga whose first step commits while the commitment is being anchored, and one waiting for approvals.
    const running = await session.startSaga({
      steps: [
        { actionId: 'draft', agentDid: alpha, input: { delayMs: 1500 } },
        { actionId: 'publish', agentDid: alpha },
      ],
    });
    const waiting = await session.startSaga({
      steps: [{ actionId: 'wire-money', agentDid: delta, approvalDeadlineSeconds: 600 }],
    });
    touched.push(running.workflowId, waiting.workflowId);
    await until(
      () => session.sagaState(waiting.sagaId),
      (s) => s.waiting !== null,
      'the second saga to wait',
    );
    await until(
      () => session.sagaState(running.sagaId),
      (s) => s.saga.steps[0].state === 'executing',
      'the first step to run',
    );
    const evidence = (approverDid: string) => ({
      sagaId: waiting.sagaId,
      stepId: 'step-1',
      digest: waiting.digests['step-1'],
      approverDid,
    });

    // Wave 1: sent in the same instant as terminate; each lands before it (accepted) or after it (refused).
    // (The approver is not the agent leaving in the same wave: that race has its own refusal, AGENT_NOT_FOUND.)
    const id = (name: string) => `${session.id}-${name}`;
    const terminating = session.updateWithId('terminate', id('terminate'));
    const settle = (p: Promise<unknown>) =>
      p.then(
        () => undefined,
        (e: unknown) => e,
      );
    const wave1 = {
      leave: settle(session.updateWithId('leave', id('w1-leave'), { agentDid: beta })),
      checkAction: settle(session.updateWithId('checkAction', id('w1-check'), { agentDid: alpha, actionId: 'draft' })),
      vfsWrite: settle(
        session.updateWithId('vfsWrite', id('w1-vfs'), { agentDid: alpha, path: 'notes.txt', content: 'racing' }),
      ),
      approve: settle(session.updateWithId('approve', id('w1-approve'), evidence(gamma))),
    };

    // Wave 2: while the anchor activity runs (the session is terminating): every request is refused by its validator.
    await until(
      () => session.summary(),
      (s) => s.state === 'terminating',
      'the session to be terminating',
    );
    const wave2: Record<string, Promise<unknown>> = {
      leave: session.updateWithId('leave', id('w2-leave'), { agentDid: gamma }),
      checkAction: session.updateWithId('checkAction', id('w2-check'), { agentDid: alpha, actionId: 'draft' }),
      vfsWrite: session.updateWithId('vfsWrite', id('w2-vfs'), { agentDid: alpha, path: 'late.txt', content: 'late' }),
      vfsSnapshot: session.updateWithId('vfsSnapshot', id('w2-snap'), { agentDid: alpha }),
      join: session.updateWithId('join', id('w2-join'), { agentDid: 'did:mesh:late', sigmaRaw: 0.8, actions: ACTIONS }),
      approve: session.updateWithId('approve', id('w2-approve'), evidence(gamma)),
      reject: session.updateWithId('reject', id('w2-reject'), { ...evidence(alpha), reason: 'late' }),
      witness: session.updateWithId(
        'witness',
        id('w2-witness'),
        bySre('witness', session.id, {
          sagaId: waiting.sagaId,
          stepId: 'step-1',
          digest: waiting.digests['step-1'],
          witnessDid: SRE,
        }),
      ),
      startSaga: session.updateWithId('startSaga', id('w2-saga'), { steps: [{ actionId: 'draft', agentDid: alpha }] }),
      vouch: session.updateWithId('vouch', id('w2-vouch'), { voucher: beta, vouchee: alpha }),
      releaseBond: session.updateWithId('releaseBond', id('w2-release'), { bondId: bond.bondId }),
      slash: session.updateWithId(
        'slash',
        id('w2-slash'),
        bySre('slash', session.id, { agentDid: alpha, reason: 'late', witnessDid: SRE }),
      ),
      reportDrift: session.updateWithId(
        'reportDrift',
        id('w2-drift'),
        signRequest(new KeyRing([reporter]), 'reportDrift', session.id, { agentDid: alpha, reporterDid: reporter.did }),
      ),
      activate: session.updateWithId('activate', id('w2-activate')),
      terminate: session.updateWithId('terminate', id('w2-terminate')),
    };
    const wave2Settled = await Promise.all(
      Object.entries(wave2).map(async ([name, p]) => [name, await refusal(p)] as const),
    );
    for (const [name, failure] of wave2Settled) {
      assert.ok(
        ['SESSION_CLOSED', 'INVALID_TRANSITION'].includes(failure.type ?? ''),
        `${name} refused as SESSION_CLOSED or INVALID_TRANSITION: ${failure.type} ${failure.message}`,
      );
      assert.match(failure.message, /terminating|archived/, `${name}'s refusal names the state`);
    }

    const result = await terminating;
    const { commitment } = result;
    assert.equal(commitment.anchorTxId, 'anchor-tx-1');
    assert.equal(anchor.posts('/anchor'), 1);

    // Wave 1: accepted before the close, or refused naming the state.
    const wave1Outcome: Record<string, 'accepted' | 'refused'> = {};
    for (const [name, p] of Object.entries(wave1)) {
      const failure = await p;
      if (failure === undefined) {
        wave1Outcome[name] = 'accepted';
        continue;
      }
      const f = await refusal(Promise.reject(failure));
      assert.match(
        f.message,
        /terminating|archived/,
        `${name} raced terminate and was refused naming the state: ${f.message}`,
      );
      wave1Outcome[name] = 'refused';
    }

    // The committed root covers every delta; the close is the last one.
    const check = async () => {
      const { trail } = await session.audit();
      const offline = verifyTrail(JSON.parse(JSON.stringify(trail)));
      assert.equal(offline.ok, true, JSON.stringify(offline));
      const verified = verifyCommitment(commitment, trail.deltas);
      assert.equal(verified.ok, true, JSON.stringify(verified));
      assert.equal(trail.deltaCount, commitment.deltaCount);
      assert.equal(trail.merkleRoot, commitment.merkleRoot);
      assert.equal(trail.deltas.at(-1)!.changes[0]!.path, '/state', 'the close is the last delta');
      return trail;
    };
    const trail = await check();
    const closeTurn = trail.deltas.at(-1)!.turn;
    const paths = trail.deltas.flatMap((d) => d.changes.map((c) => ({ turn: d.turn, path: c.path })));
    if (wave1Outcome.leave === 'accepted')
      assert.ok(paths.some((p) => p.path === `/participants/${beta}/active` && p.turn < closeTurn));
    if (wave1Outcome.checkAction === 'accepted')
      assert.ok(paths.some((p) => p.path.startsWith('/decisions/') && p.turn < closeTurn));

    // Nothing of wave 2 entered history: each was refused by its validator.
    const accepted = await acceptedUpdateIds(session.workflowId);
    assert.deepEqual(
      accepted.filter((u) => u.includes('-w2-')),
      [],
      'wave 2 left no UpdateAccepted event',
    );

    // The running saga's step committed during the anchor; its next step is denied; nothing more is recorded.
    const ran = await sagaOutcome(session.saga(running.sagaId));
    assert.equal(
      ran.saga.steps[0].state === 'compensated' || ran.saga.steps[0].state === 'committed',
      true,
      JSON.stringify(ran.saga.steps[0]),
    );
    assert.match(ran.error ?? '', /terminating|archived/);
    assert.deepEqual(await executedSteps(running.workflowId), ['step-1']);
    const denied = await sagaOutcome(session.saga(waiting.sagaId));
    assert.equal(denied.saga.state, 'failed');
    assert.deepEqual(await executedSteps(waiting.workflowId), []);
    await check();
    console.log(
      `      wave 1: ${Object.entries(wave1Outcome)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}; ${commitment.deltaCount} deltas committed`,
    );
  });

  it('7. terminate and leave sent together, many times: every committed root covers every delta', async () => {
    const results = await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        const session = await openSession({ [alpha]: 0.85, [beta]: 0.8 });
        touched.push(session.workflowId);
        const calls =
          i % 2 === 0
            ? [
                session.update('leave', { agentDid: beta }),
                session.update('terminate'),
                session.update('checkAction', { agentDid: alpha, actionId: 'draft' }),
              ]
            : [
                session.update('terminate'),
                session.update('leave', { agentDid: beta }),
                session.update('vfsWrite', { agentDid: alpha, path: 'x', content: 'x' }),
              ];
        const settled = await Promise.allSettled(calls);
        const term = settled.find((s, k) => (i % 2 === 0 ? k === 1 : k === 0))!;
        assert.equal(term.status, 'fulfilled');
        const { commitment } = (term as PromiseFulfilledResult<any>).value;
        for (const s of settled) {
          if (s.status === 'rejected')
            assert.match((await refusal(Promise.reject(s.reason))).message, /terminating|archived/);
        }
        const { trail } = await session.audit();
        assert.equal(verifyCommitment(commitment, trail.deltas).ok, true);
        assert.equal(trail.deltas.at(-1)!.changes[0]!.path, '/state');
        return settled.map((s) => s.status).join('/');
      }),
    );
    console.log(`      outcomes (leave/terminate/other, in send order): ${results.join(' · ')}`);
  });

  it('7. refused updates racing saga outcomes: the trail served after the close (a replay) is the one committed', async () => {
    const rounds = await Promise.all(
      Array.from({ length: 3 }, async () => {
        const session = await openSession({ [alpha]: 0.85, [beta]: 0.8 });
        touched.push(session.workflowId);
        // An attacker's stream of updates that every validator refuses: they never enter history.
        let stop = false;
        const refusedStream = async () => {
          while (!stop)
            await session
              .update('approve', { sagaId: '..', stepId: 'x', digest: 'x', approverDid: 'x' })
              .catch(() => undefined);
        };
        const attackers = [refusedStream(), refusedStream(), refusedStream()];
        try {
          for (let i = 0; i < 6; i++) {
            const s = await session.startSaga({
              steps: [{ actionId: 'draft', agentDid: beta, input: { delayMs: 100 * i } }],
            });
            touched.push(s.workflowId);
          }
          await until(
            () => session.sagaRecords(),
            (r) => r.every((g) => g.state !== 'running'),
            'the sagas to end',
          );
        } finally {
          stop = true;
          await Promise.all(attackers);
        }
        const live = (await session.audit()).trail;
        const { commitment } = await session.update('terminate');
        // The session has closed: its queries are answered from its history.
        const { trail } = await session.audit();
        const k = live.deltas.findIndex((d, i) => JSON.stringify(d) !== JSON.stringify(trail.deltas[i]));
        const verified = verifyCommitment(commitment, trail.deltas);
        assert.equal(
          verified.ok,
          true,
          `${session.id}: the committed root covers the trail after the close: ${JSON.stringify(verified)}${k < 0 ? '' : `; delta ${k} (${live.deltas[k]!.changes[0]!.path}) was recorded at ${live.deltas[k]!.at} in the live run and at ${trail.deltas[k]!.at} on replay`}`,
        );
        assert.deepEqual(trail.deltas.slice(0, live.deltas.length), live.deltas, "replay gives the live run's deltas");
        return trail.deltaCount;
      }),
    );
    console.log(`      committed and replayed trails agree (${rounds.join(', ')} deltas)`);
  });

  it('afterwards the same worker runs a fresh saga to completion', async () => {
    await freshSagaCompletes();
  });
});
