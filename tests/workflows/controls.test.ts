/**
 * SPEC §12 on a real server: kill with hand-off, quarantine, elevation with
 * expiry, delegation, rate limits, budgets and the breach breaker — each a
 * durable workflow fact recorded in the trail.
 */
import assert from 'node:assert/strict';
import { isHypervisorError } from '../../src/core/errors';
import type { SessionHandle } from '../../src/client';
import type { Delta } from '../../src/core/audit';
import { eventually, hypervisor, uniqueId } from '../helpers/hv';
import { ACTIONS, activeSession, asSre, SRE_WITNESSES } from '../helpers/sessions';
import { calls } from '../helpers/testHandlers';

const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';
const gamma = 'did:mesh:gamma';
const weak = 'did:mesh:weak';
const sre = SRE_WITNESSES[0]!;
const runs = (workflowId: string, phase: 'execute' | 'undo' | 'cancelled' = 'execute') =>
  (calls[workflowId] ?? []).filter((c) => c.phase === phase);
const deltasAt = async (session: SessionHandle, path: string): Promise<Delta[]> =>
  (await session.audit()).trail.deltas.filter((d) => d.changes.some((c) => c.path === path));

describe('controls (SPEC §12)', function () {
  this.timeout(120_000);

  describe('kill', () => {
    it('cancels the running step within its heartbeat timeout, hands the remaining steps to a substitute that passes the gate, and no step of the killed agent starts after the kill', async () => {
      const session = await activeSession({ [alpha]: 0.85, [beta]: 0.8, [gamma]: 0.8 });
      const saga = await session.startSaga({
        steps: [
          { actionId: 'draft', agentDid: beta },
          { actionId: 'reserve', agentDid: alpha, input: { delayMs: 30_000, delayFor: alpha }, timeoutSeconds: 60 },
          { actionId: 'publish', agentDid: alpha },
        ],
      });
      const wf = saga.handle.workflowId;
      await eventually(
        async () => runs(wf).filter((c) => c.stepId === 'step-2').length,
        (n) => n === 1,
        'step 2 to run as alpha',
      );
      const killAsked = Date.now();
      const kill = await (
        await asSre(session)
      ).kill({ agentDid: alpha, sreDid: sre, reason: 'runaway', substituteDid: gamma });
      assert.deepEqual(kill.sagasHolding, [saga.sagaId]);
      assert.deepEqual(
        kill.handedOff.map((h) => [h.stepId, h.agentDid]),
        [
          ['step-2', gamma],
          ['step-3', gamma],
        ],
      );
      const cancelled = await eventually(
        async () => runs(wf, 'cancelled'),
        (c) => c.length === 1,
        'the running step to see its cancellation',
        10_000,
      );
      assert.ok(
        cancelled[0]!.at - killAsked <= 5_000,
        `cancelled ${cancelled[0]!.at - killAsked} ms after the kill (heartbeat timeout 5 s)`,
      );

      const result = await saga.result();
      assert.equal(result.saga.state, 'completed');
      assert.deepEqual(
        result.saga.steps.map((s) => s.agentDid),
        [beta, gamma, gamma],
      );
      const [killDelta] = await deltasAt(session, `/controls/${alpha}`);
      assert.ok(killDelta, 'the kill is in the trail');
      const alphaStarts = runs(wf).filter((c) => c.agentDid === alpha);
      assert.ok(
        alphaStarts.every((c) => c.at <= killDelta.at),
        "no step of the killed agent started after the kill's delta",
      );
      // Every step acted once: alpha's run of step 2 stopped on its cancellation before acting.
      const acted = runs(wf).filter(
        (c) =>
          !runs(wf, 'cancelled').some((x) => x.key === c.key && x.attempt === c.attempt && x.agentDid === c.agentDid),
      );
      assert.deepEqual(
        acted.map((c) => `${c.stepId}:${c.agentDid}`),
        [`step-1:${beta}`, `step-2:${gamma}`, `step-3:${gamma}`],
      );
      // Handed off under a new digest, bound to the old one and the substitute.
      assert.notEqual(result.digests['step-2'], saga.digests['step-2']);
      assert.equal((await session.verifyAudit()).verification.ok, true);
      // A killed agent runs nothing, not even read-only actions; a kill is final.
      await assert.rejects((await asSre(session)).release({ agentDid: alpha, sreDid: sre }), (e) =>
        isHypervisorError(e, 'AGENT_KILLED'),
      );
      const again = await session.startSaga({ steps: [{ actionId: 'read-report', agentDid: alpha }] });
      assert.match((await again.result()).error ?? '', /killed/);
    });

    it('without a substitute that passes the gate, the saga compensates in reverse — the cancelled step too', async () => {
      const session = await activeSession({ [alpha]: 0.85, [beta]: 0.8, [weak]: 0.5 });
      const saga = await session.startSaga({
        steps: [
          { actionId: 'draft', agentDid: beta },
          { actionId: 'reserve', agentDid: alpha, input: { delayMs: 30_000, delayFor: alpha }, timeoutSeconds: 60 },
          { actionId: 'publish', agentDid: alpha },
        ],
      });
      const wf = saga.handle.workflowId;
      await eventually(
        async () => runs(wf).length,
        (n) => n === 2,
        'step 2 to run',
      );
      // The substitute is in ring 3: it does not pass the gate for a ring-2 step.
      await (
        await asSre(session)
      ).kill({ agentDid: alpha, sreDid: sre, reason: 'compromised key', substituteDid: weak });
      const result = await saga.result();
      assert.equal(result.saga.state, 'compensated');
      assert.deepEqual(result.compensationOrder, ['step-2', 'step-1']);
      assert.equal(result.saga.steps[2]!.state, 'pending');
      assert.match(result.error ?? '', /ring violation/);
      assert.deepEqual(
        runs(wf).map((c) => c.stepId),
        ['step-1', 'step-2'],
        'nothing ran after the kill',
      );
      assert.equal((await session.verifyAudit()).verification.ok, true);
    });

    it('is refused by name unless an SRE of the session asks, and leaves no trace then', async () => {
      const session = await activeSession();
      const before = (await session.auditHead()).deltaCount;
      // An SRE signs its requests in every identity mode (SPEC §11.9): a DID that is no did:key is no SRE.
      await assert.rejects(session.kill({ agentDid: alpha, sreDid: beta, reason: 'x' }), (e) =>
        isHypervisorError(e, 'NOT_DID_KEY'),
      );
      await assert.rejects(
        (await asSre(session)).kill({ agentDid: alpha, sreDid: sre, reason: 'x', substituteDid: alpha }),
        (e) => isHypervisorError(e, 'INVALID_INPUT'),
      );
      await assert.rejects(
        (await asSre(session)).quarantine({ agentDid: 'did:mesh:nobody', sreDid: sre, reason: 'x' }),
        (e) => isHypervisorError(e, 'AGENT_NOT_FOUND'),
      );
      assert.equal((await session.auditHead()).deltaCount, before);
    });
  });

  describe('quarantine', () => {
    it('denies steps at once, allows read-only ones, and ends at its TTL by a timer — across continue-as-new', async () => {
      const hv = await hypervisor();
      const session = await hv.createSession({
        sessionId: uniqueId('q'),
        creatorDid: 'did:mesh:admin',
        maxUpdatesPerRun: 10,
        config: { sreWitnesses: SRE_WITNESSES },
      });
      await session.join({ agentDid: alpha, sigmaRaw: 0.85, actions: ACTIONS });
      await session.join({ agentDid: beta, sigmaRaw: 0.8, actions: ACTIONS });
      await session.activate();
      const q = await (
        await asSre(session)
      ).quarantine({ agentDid: alpha, sreDid: sre, reason: 'odd behaviour', ttlSeconds: 12 });
      assert.ok(q.until! > Date.now());
      const denied = await session.startSaga({ steps: [{ actionId: 'draft', agentDid: alpha }] });
      assert.match((await denied.result()).error ?? '', /quarantined: it may run read-only actions only/);
      const read = await session.startSaga({ steps: [{ actionId: 'read-report', agentDid: alpha }] });
      assert.equal((await read.result()).saga.state, 'completed');
      // A quarantined agent may not approve or vouch.
      await assert.rejects(session.vouch({ voucher: alpha, vouchee: beta }), (e) =>
        isHypervisorError(e, 'AGENT_QUARANTINED'),
      );
      assert.deepEqual(
        (await session.summary()).controls.restricted.map((r) => [r.did, r.kind]),
        [[alpha, 'quarantine']],
      );
      // Operators find it: the HvQuarantined search attribute, and a line on the session's Web UI card.
      const query = `HvSessionId = '${session.sessionId}' AND HvQuarantined = '${alpha}'`;
      await eventually(
        async () => (await hv.client.workflow.count(query)).count,
        (n) => n === 1,
        'visibility to index the quarantine',
      );
      const meta = await session.handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
      assert.match(meta.currentDetails ?? '', new RegExp(`\\*\\*Quarantined:\\*\\* ${alpha} until .* — odd behaviour`));
      // Enough updates to continue as new while quarantined: the next run carries it, and its timer.
      for (let i = 0; i < 8; i++) await session.checkAction({ agentDid: beta, actionId: 'draft' });
      await eventually(
        () => session.summary(),
        (s) => s.runs >= 2,
        'the session to continue as new',
      );
      assert.equal((await session.summary()).controls.restricted.length, 1, 'still quarantined in the new run');
      // The release is the timer's delta (a summary may show the TTL passed a moment before the timer's task records it).
      const [quarantined, released] = await eventually(
        () => deltasAt(session, `/controls/${alpha}`),
        (d) => d.length === 2,
        'the TTL to release alpha',
        30_000,
      );
      assert.equal(released!.changes[0]!.operation, 'delete');
      assert.ok(
        released!.at - quarantined!.at >= 12_000,
        `released ${released!.at - quarantined!.at} ms after, not before its TTL`,
      );
      assert.equal((await session.summary()).controls.restricted.length, 0);
      const after = await session.startSaga({ steps: [{ actionId: 'draft', agentDid: alpha }] });
      assert.equal((await after.result()).saga.state, 'completed');
      assert.equal((await session.verifyAudit()).verification.ok, true);
    });
  });

  describe('elevation and delegation', () => {
    it('an elevation to ring 1 runs a ring-1 step without approvals inside its window; after it a step is denied, in a saga already running', async () => {
      const session = await activeSession({ [alpha]: 0.85, [beta]: 0.8, [gamma]: 0.8 });
      const asked = await session.requestElevation({
        agentDid: alpha,
        ring: 1,
        ttlSeconds: 4,
        justification: 'incident 42: rotate keys',
      });
      assert.equal(asked.state, 'requested');
      await assert.rejects(
        session.approveElevation({
          agentDid: alpha,
          elevationId: asked.elevationId,
          digest: '0'.repeat(64),
          approverDid: beta,
        }),
        (e) => isHypervisorError(e, 'DIGEST_MISMATCH'),
      );
      await session.approveElevation({
        agentDid: alpha,
        elevationId: asked.elevationId,
        digest: asked.digest,
        approverDid: beta,
      });
      const active = await session.approveElevation({
        agentDid: alpha,
        elevationId: asked.elevationId,
        digest: asked.digest,
        approverDid: gamma,
      });
      assert.equal(active.state, 'active');
      const saga = await session.startSaga({
        steps: [
          { actionId: 'wire-money', agentDid: alpha, stepId: 'inside' },
          { actionId: 'draft', agentDid: beta, input: { delayMs: 5_000 } },
          { actionId: 'wire-money', agentDid: alpha, stepId: 'after', approvalDeadlineSeconds: 1 },
        ],
      });
      const result = await saga.result();
      assert.equal(
        result.saga.steps[0]!.state,
        'compensated',
        'the step inside the window ran (then was undone with the saga)',
      );
      assert.equal(result.failedStepId, 'after');
      assert.match(result.error ?? '', /elevation to ring 1 expired/);
      const lifecycle = await eventually(
        () => deltasAt(session, `/elevations/${asked.elevationId}`),
        (d) => d.length === 3,
        "the elevation's timer to record its end",
      );
      assert.deepEqual(
        lifecycle.map((d) => d.changes[0]!.operation),
        ['add', 'modify', 'delete'],
        'requested, activated, expired',
      );
      assert.ok(lifecycle[2]!.at >= active.until!, 'ended at its time, by the timer');
    });

    it('revocation ends an elevation for the next step; a child of a ring-2 parent never gets ring 2 or better', async () => {
      const session = await activeSession({ [alpha]: 0.85, [beta]: 0.8, [gamma]: 0.8 });
      const e = await session.requestElevation({ agentDid: alpha, ring: 1, justification: 'deploy' });
      await session.approveElevation({
        agentDid: alpha,
        elevationId: e.elevationId,
        digest: e.digest,
        approverDid: beta,
      });
      await session.approveElevation({
        agentDid: alpha,
        elevationId: e.elevationId,
        digest: e.digest,
        approverDid: gamma,
      });
      const saga = await session.startSaga({
        steps: [
          { actionId: 'draft', agentDid: beta, input: { delayMs: 2_000 } },
          { actionId: 'wire-money', agentDid: alpha, approvalDeadlineSeconds: 1 },
        ],
      });
      await eventually(
        () => saga.state(),
        (s) => s.saga.steps[0]!.state === 'executing',
        'step 1 to run',
      );
      const revoked = await (
        await asSre(session)
      ).revokeElevation({ agentDid: alpha, byDid: sre, reason: 'done early' });
      assert.equal(revoked.state, 'revoked');
      const result = await saga.result();
      assert.equal(result.failedStepId, 'step-2');
      assert.match(result.error ?? '', /ring 1 needs σ_eff > 0.95/);
      // Delegation: the child asks for σ 0.97, and is capped at its parent's ring + 1.
      await session.join({ agentDid: 'did:mesh:child', sigmaRaw: 0.97, actions: ACTIONS, delegatedBy: beta });
      const child = await session.participant('did:mesh:child');
      assert.deepEqual([child!.ring, child!.ringCap], [3, 3]);
      const denied = await session.startSaga({ steps: [{ actionId: 'draft', agentDid: 'did:mesh:child' }] });
      assert.match((await denied.result()).error ?? '', /ring/);
      assert.deepEqual((await session.summary()).controls.delegations, [{ child: 'did:mesh:child', parent: beta }]);
    });
  });

  describe('rate limits and budgets', () => {
    it('a ring-3 agent firing 30 step starts at once gets 10 through and 20 refused with a retry-after; keys never collide', async () => {
      const hv = await hypervisor();
      const prefix = uniqueId('rl');
      // did:x:a:b in session "<p>c" and did:x:a in session "<p>b:c": a "did:session" key would collide.
      // Ring 3's burst of 10, with a refill slow enough that 30 requests take no fresh token however long they take to arrive.
      const config = { controls: { rateLimits: { ring3: { perSecond: 0.05, burst: 10 } } } };
      const one = await hv.createSession({ sessionId: `${prefix}c`, creatorDid: 'did:mesh:admin', config });
      const two = await hv.createSession({ sessionId: `${prefix}b:c`, creatorDid: 'did:mesh:admin', config });
      await one.join({ agentDid: 'did:x:a:b', sigmaRaw: 0.5, actions: ACTIONS });
      await two.join({ agentDid: 'did:x:a', sigmaRaw: 0.5, actions: ACTIONS });
      await one.activate();
      await two.activate();
      const burst = async (session: SessionHandle, agentDid: string) =>
        Promise.allSettled(
          Array.from({ length: 30 }, () => session.startSaga({ steps: [{ actionId: 'read-report', agentDid }] })),
        );
      const [a, b] = await Promise.all([burst(one, 'did:x:a:b'), burst(two, 'did:x:a')]);
      for (const results of [a, b]) {
        assert.equal(results.filter((r) => r.status === 'fulfilled').length, 10);
        const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
        assert.equal(refused.length, 20);
        for (const r of refused) {
          assert.ok(isHypervisorError(r.reason, 'RATE_LIMITED'), String(r.reason));
          assert.ok(
            ((r.reason as { details?: { retryAfterMs?: number } }).details?.retryAfterMs ?? 0) > 0,
            'a retry-after',
          );
        }
      }
    });

    it('the typed client waits out RATE_LIMITED (its retry-after) and sends again; with failFast it gives the refusal at once', async () => {
      // Ring 2 at 5/s with a burst of 1: of 3 starts at once, 2 are refused with a retry-after of about 200 ms.
      const session = await activeSession(
        { [alpha]: 0.8 },
        { controls: { rateLimits: { ring2: { perSecond: 5, burst: 1 } } } },
      );
      const start = (opts?: { failFast: boolean }) =>
        session.startSaga({ steps: [{ actionId: 'read-report', agentDid: alpha }] }, opts);
      const waited = await Promise.allSettled([start(), start(), start()]);
      assert.deepEqual(
        waited.map((r) => r.status),
        ['fulfilled', 'fulfilled', 'fulfilled'],
        waited.map((r) => (r.status === 'rejected' ? String(r.reason) : 'ok')).join('; '),
      );
      const fast = await Promise.allSettled([
        start({ failFast: true }),
        start({ failFast: true }),
        start({ failFast: true }),
      ]);
      const refused = fast.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      assert.ok(refused.length >= 1, 'at least one refused at once');
      for (const r of refused) assert.ok(isHypervisorError(r.reason, 'RATE_LIMITED'), String(r.reason));
    });

    it("a step over its agent's rate waits (a durable timer) for the token the session names, and the saga completes", async () => {
      // Ring 2 at 5/s with a burst of 1: each step after the first claims a token about 200 ms after the last.
      const session = await activeSession(
        { [alpha]: 0.8 },
        { controls: { rateLimits: { ring2: { perSecond: 5, burst: 1 } } } },
      );
      const saga = await session.startSaga({
        steps: [1, 2, 3].map(() => ({ actionId: 'read-report', agentDid: alpha })),
      });
      const result = await saga.result();
      assert.equal(result.saga.state, 'completed', result.error ?? '');
      assert.deepEqual(
        result.saga.steps.map((s) => s.state),
        ['committed', 'committed', 'committed'],
      );
    });

    it('a budget of 1.00 with steps costing 0.30: the fourth step is denied, the saga compensates, a retried step is charged once', async () => {
      const metered = {
        actionId: 'metered',
        reversibility: 'FULL' as const,
        executeApi: 'handler:test.step',
        undoApi: 'handler:test.step',
        costUnits: 0.3,
      };
      const session = await activeSession({ [alpha]: 0.85 }, { controls: { budgets: { agentCost: 1 } } });
      await session.join({ agentDid: beta, sigmaRaw: 0.8, actions: [...ACTIONS, metered] });
      const saga = await session.startSaga({
        steps: [
          { actionId: 'metered', agentDid: beta, input: { costUnits: 0.3 } },
          { actionId: 'metered', agentDid: beta, input: { costUnits: 0.3 } },
          {
            actionId: 'metered',
            agentDid: beta,
            input: { costUnits: 0.3, failAttempts: 1 },
            retry: { maximumAttempts: 2, initialIntervalSeconds: 0.1 },
          },
          { actionId: 'metered', agentDid: beta, input: { costUnits: 0.3 } },
        ],
      });
      const result = await saga.result();
      assert.equal(result.saga.state, 'compensated');
      assert.equal(result.failedStepId, 'step-4');
      assert.match(result.error ?? '', /cost budget of 1 would be exceeded/);
      assert.equal(result.saga.steps[2]!.attempts, 2, 'step 3 was retried');
      assert.deepEqual(
        runs(saga.handle.workflowId).map((c) => c.stepId),
        ['step-1', 'step-2', 'step-3', 'step-3'],
      );
      const spent = await eventually(
        () => session.summary(),
        (s) => s.controls.spent.session.calls > 0,
        'the session to settle the saga',
      );
      assert.deepEqual(spent.controls.spent.agents.find((a) => a.did === beta)!.spent, { calls: 3, cost: 0.3 * 3 });
      assert.ok((await deltasAt(session, `/budgets/${beta}`)).length === 1, 'the charge is in the trail');
    });
  });

  describe('breach breaker', () => {
    it("70 % of an agent's requests above its ring trips the breaker: quarantined, then released after the cooldown", async () => {
      const session = await activeSession(
        { [alpha]: 0.85, [beta]: 0.8 },
        { controls: { breaker: { cooldownSeconds: 2 } } },
      );
      for (let i = 0; i < 3; i++) await session.checkAction({ agentDid: alpha, actionId: 'draft' });
      for (let i = 0; i < 6; i++) await session.checkAction({ agentDid: alpha, actionId: 'wire-money' });
      assert.equal((await session.summary()).controls.restricted.length, 0, '6 of 9 is under 70 %');
      await session.checkAction({ agentDid: alpha, actionId: 'wire-money' });
      const tripped = (await session.summary()).controls.restricted;
      assert.deepEqual(
        tripped.map((r) => [r.did, r.kind]),
        [[alpha, 'breaker']],
      );
      assert.match(tripped[0]!.reason, /breach HIGH: 70%/);
      const denied = await session.startSaga({ steps: [{ actionId: 'draft', agentDid: alpha }] });
      assert.match((await denied.result()).error ?? '', /quarantined/);
      const [trip, release] = await eventually(
        () => deltasAt(session, `/controls/${alpha}`),
        (d) => d.length === 2,
        'the cooldown to end',
        20_000,
      );
      assert.ok(release!.at - trip!.at >= 2_000, 'released after the cooldown');
    });
  });
});
