import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { hypervisor, uniqueId, eventually } from '../helpers/hv';
import { ACTIONS, activeSession, asSre, SRE, SRE_ON_CALL } from '../helpers/sessions';
import { calls } from '../helpers/testHandlers';
import { allowTestToolOrigin } from '../helpers/env';

const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';
const gamma = 'did:mesh:gamma';
const operator = 'did:mesh:operator';

describe('governed sagas: the gate, consensus, demotion and escalation', function () {
  this.timeout(120_000);

  it('compensates a read-only step as nothing to undo: the saga ends compensated, no escalation, no slash', async () => {
    const session = await activeSession({ [alpha]: 0.85, [beta]: 0.9 });
    const saga = await session.startSaga({
      steps: [
        { actionId: 'read-report', agentDid: alpha },
        { actionId: 'draft', agentDid: alpha },
        { actionId: 'publish', agentDid: beta, input: { failAttempts: -1 }, retry: { maximumAttempts: 1 } },
      ],
    });
    const result = await saga.result();
    assert.equal(result.saga.state, 'compensated', 'a step that only read is not a failed compensation');
    assert.deepEqual(
      result.saga.steps.map((s) => s.state),
      ['compensated', 'compensated', 'failed'],
    );
    assert.deepEqual(result.compensationOrder, ['step-2'], 'only the draft had something to undo');
    const reader = (await session.participant(alpha))!;
    assert.equal(reader.sigmaRaw, 0.85, 'the reading agent is not slashed');
  });

  it("escalates a failed compensation and slashes the step's agent with its cascade", async () => {
    const session = await activeSession({ [alpha]: 0.85, [beta]: 0.9 });
    await session.vouch({ voucher: beta, vouchee: alpha });
    const saga = await session.startSaga({
      steps: [
        { actionId: 'draft', agentDid: alpha, input: { failUndo: true } },
        { actionId: 'publish', agentDid: beta, input: { failAttempts: -1 } },
      ],
    });
    const result = await saga.result();
    assert.equal(result.saga.state, 'escalated');
    assert.deepEqual(
      result.saga.steps.map((s) => s.state),
      ['compensation_failed', 'failed'],
    );
    const slashed = await eventually(
      () => session.participant(alpha),
      (p) => p!.sigmaRaw === 0,
      'the session to slash alpha',
    );
    assert.equal(slashed!.ring, 3);
    const voucher = (await session.participant(beta))!;
    assert.ok(voucher.sigmaRaw < 0.9, 'the voucher was clipped');
    const { trail } = await session.audit();
    assert.ok(trail.deltas.some((d) => d.changes.some((c) => c.path.startsWith('/slashes/'))));
  });

  it('escalates a step that has no undo', async () => {
    const session = await activeSession();
    const saga = await session.startSaga({
      steps: [
        { actionId: 'draft-no-undo', agentDid: alpha },
        { actionId: 'publish', agentDid: alpha, input: { failAttempts: -1 } },
      ],
    });
    const result = await saga.result();
    assert.equal(result.saga.state, 'escalated');
    assert.match(result.saga.steps[0]!.error ?? '', /no undo/);
  });

  it('denies the next step after a demotion mid-saga and compensates the first', async () => {
    const session = await activeSession();
    const saga = await session.startSaga({
      steps: [
        { actionId: 'draft', agentDid: alpha, input: { delayMs: 1500 } },
        { actionId: 'publish', agentDid: alpha },
      ],
    });
    await eventually(
      () => saga.state(),
      (s) => s.saga.steps[0]!.state === 'executing',
      'step 1 to start',
    );
    await (await asSre(session)).slash({ agentDid: alpha, reason: 'caught exfiltrating', witnessDid: SRE });
    const result = await saga.result();
    assert.equal(result.saga.state, 'compensated');
    assert.equal(result.failedStepId, 'step-2');
    assert.match(result.error ?? '', /ring violation/);
    assert.deepEqual(result.compensationOrder, ['step-1']);
    assert.equal(calls[result.workflowId]!.filter((c) => c.stepId === 'step-2').length, 0, 'the denied step never ran');
  });

  it("runs a ring 1 step only after the session's quorum of approvals, and denies it at its deadline", async () => {
    const agents = { [alpha]: 0.97, [beta]: 0.8, [gamma]: 0.8 };
    const session = await activeSession(agents);
    const approved = await session.startSaga({
      steps: [{ actionId: 'wire-money', agentDid: alpha, approvalDeadlineSeconds: 120 }],
    });
    await eventually(
      () => approved.state(),
      (s) => s.waiting?.stepId === 'step-1',
      'the gate to wait',
    );
    const step = { sagaId: approved.sagaId, stepId: 'step-1' };
    await assert.rejects(session.approve({ ...step, approverDid: alpha }), { code: 'SELF_APPROVAL' });
    const first = await session.approve({ ...step, approverDid: beta });
    assert.deepEqual([first.approvals, first.quorum], [1, 2]);
    await assert.rejects(session.approve({ ...step, approverDid: beta }), { code: 'DUPLICATE_APPROVAL' });
    assert.equal((await approved.state()).saga.steps[0]!.state, 'pending');
    await session.approve({ ...step, approverDid: gamma });
    const ok = await approved.result();
    assert.equal(ok.saga.state, 'completed');
    assert.deepEqual(ok.grants['step-1']!.approvals, [beta, gamma]);

    const late = await session.startSaga({
      steps: [{ actionId: 'wire-money', agentDid: alpha, approvalDeadlineSeconds: 2 }],
    });
    await session.approve({ sagaId: late.sagaId, stepId: 'step-1', approverDid: beta });
    const denied = await late.result();
    assert.equal(denied.saga.state, 'failed');
    assert.match(denied.error ?? '', /consensus.*deadline/);
  });

  it("runs a ring 0 step only for a ring 1 agent (consensus) with an SRE witness of the session's config", async () => {
    const session = await activeSession({ [alpha]: 0.85, [beta]: 0.8, [operator]: 0.97 });
    const saga = await session.startSaga({
      steps: [{ actionId: 'reconfigure', agentDid: operator, approvalDeadlineSeconds: 120 }],
    });
    await eventually(
      () => saga.state(),
      (s) => s.waiting?.stepId === 'step-1',
      'the gate to wait',
    );
    const step = { sagaId: saga.sagaId, stepId: 'step-1' };
    // A witness is an SRE's signed word (SPEC §11.9): a DID that is no did:key is no SRE witness.
    await assert.rejects(session.witness({ ...step, witnessDid: operator }), { code: 'NOT_DID_KEY' });
    await assert.rejects(session.witness({ ...step, witnessDid: beta }), { code: 'NOT_DID_KEY' });
    await (await asSre(session)).witness({ ...step, witnessDid: SRE_ON_CALL });
    assert.equal(
      (await saga.state()).saga.steps[0]!.state,
      'pending',
      'a witness alone does not lift the agent to ring 1',
    );
    await session.approve({ ...step, approverDid: alpha });
    const cosigned = Date.now();
    await session.approve({ ...step, approverDid: beta });
    const result = await saga.result();
    assert.equal(result.saga.state, 'completed');
    assert.equal(result.grants['step-1']!.witness, SRE_ON_CALL);
    const ran = calls[result.workflowId]!.filter((c) => c.phase === 'execute');
    assert.equal(ran.length, 1);
    assert.ok(ran[0]!.at >= cosigned, 'the step ran only once both the witness and the quorum were in');
  });

  it("denies a sandbox agent's write and compensates; refuses to run a saga a client started directly", async () => {
    const session = await activeSession({ [alpha]: 0.85, 'did:mesh:sandboxed': 0.3 });
    const saga = await session.startSaga({
      steps: [
        { actionId: 'draft', agentDid: alpha },
        { actionId: 'publish', agentDid: 'did:mesh:sandboxed' },
      ],
    });
    const result = await saga.result();
    assert.equal(result.saga.state, 'compensated');
    assert.match(result.error ?? '', /ring violation.*σ_eff > 0.6/);
    await eventually(
      () => session.sagas(),
      (s) => s.some((g) => g.sagaId === saga.sagaId && g.state === 'compensated'),
      'the session to learn the outcome',
    );

    const hv = await hypervisor();
    const direct = await hv.client.workflow.start('sagaWorkflow', {
      taskQueue: hv.taskQueue,
      workflowId: uniqueId('direct'),
      args: [{ sessionId: session.sessionId, sagaId: 'x', steps: [{ actionId: 'draft', agentDid: alpha }] }],
    });
    await assert.rejects(direct.result(), (err: Error & { cause?: { type?: string; message?: string } }) => {
      assert.equal(err.cause?.type, 'SAGA_NOT_STARTED_BY_SESSION');
      assert.match(err.cause?.message ?? '', /startSaga/);
      return true;
    });
  });

  it('calls an HTTP tool the action declared, with one idempotency key per step across retries, and its undo with another', async () => {
    const seen: { path: string; key: string }[] = [];
    let executeAttempts = 0;
    const server = http.createServer((req, res) => {
      seen.push({ path: req.url ?? '', key: String(req.headers['idempotency-key']) });
      if (req.url === '/execute' && ++executeAttempts < 2) {
        res.writeHead(503).end('busy');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: req.url }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    allowTestToolOrigin(base); // the test worker lists the tool, as an operator would (HV_TOOL_ORIGINS)
    try {
      const hv = await hypervisor();
      const session = await hv.createSession({
        sessionId: uniqueId('s'),
        creatorDid: 'did:mesh:admin',
        config: { allowedToolOrigins: [base] },
      });
      await assert.rejects(
        session.join({
          agentDid: beta,
          sigmaRaw: 0.8,
          actions: [{ actionId: 'exfiltrate', reversibility: 'FULL', executeApi: 'http://198.51.100.7/steal' }],
        }),
        { code: 'TOOL_ORIGIN_NOT_ALLOWED' },
      );
      await session.join({
        agentDid: alpha,
        sigmaRaw: 0.85,
        actions: [
          { actionId: 'http-draft', reversibility: 'FULL', executeApi: `${base}/execute`, undoApi: `${base}/undo` },
          ...ACTIONS,
        ],
      });
      await session.activate();
      const saga = await session.startSaga({
        steps: [
          { actionId: 'http-draft', agentDid: alpha, retry: { maximumAttempts: 3, initialIntervalSeconds: 0.1 } },
          { actionId: 'publish', agentDid: alpha, input: { failAttempts: -1 } },
        ],
      });
      const result = await saga.result();
      assert.equal(result.saga.state, 'compensated');
      const executes = seen.filter((s) => s.path === '/execute');
      const undos = seen.filter((s) => s.path === '/undo');
      assert.equal(executes.length, 2);
      assert.equal(new Set(executes.map((s) => s.key)).size, 1);
      assert.equal(executes[0]!.key, `${saga.handle.workflowId}/step-1/execute`);
      assert.deepEqual(
        undos.map((s) => s.key),
        [`${saga.handle.workflowId}/step-1/undo`],
      );
    } finally {
      server.close();
    }
  });
});
