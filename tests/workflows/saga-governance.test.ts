import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { hypervisor, uniqueId, eventually } from '../helpers/hv';
import { activeSession } from '../helpers/sessions';
import { calls } from '../helpers/testHandlers';

const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';

describe('governed sagas: the gate, consensus, demotion and escalation', function () {
  this.timeout(120_000);

  it('escalates a failed compensation and slashes the step\'s agent with its cascade', async () => {
    const session = await activeSession({ [alpha]: 0.85, [beta]: 0.9 });
    await session.vouch({ voucher: beta, vouchee: alpha });
    const saga = await session.startSaga({
      steps: [
        { actionId: 'draft', agentDid: alpha, handler: 'test.step', input: { failUndo: true } },
        { actionId: 'publish', agentDid: beta, handler: 'test.step', input: { failAttempts: -1 } },
      ],
    });
    const result = await saga.result();
    assert.equal(result.saga.state, 'escalated');
    assert.deepEqual(result.saga.steps.map((s) => s.state), ['compensation_failed', 'failed']);
    const slashed = await eventually(() => session.participant(alpha), (p) => p!.sigmaRaw === 0, 'the session to slash alpha');
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
        { actionId: 'draft', agentDid: alpha, handler: 'test.no-undo' },
        { actionId: 'publish', agentDid: alpha, handler: 'test.step', input: { failAttempts: -1 } },
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
        { actionId: 'draft', agentDid: alpha, handler: 'test.step', input: { delayMs: 1500 } },
        { actionId: 'publish', agentDid: alpha, handler: 'test.step' },
      ],
    });
    await eventually(() => saga.state(), (s) => s.saga.steps[0]!.state === 'executing', 'step 1 to start');
    await session.slash({ agentDid: alpha, reason: 'caught exfiltrating', witnessDid: 'did:mesh:sre' });
    const result = await saga.result();
    assert.equal(result.saga.state, 'compensated');
    assert.equal(result.failedStepId, 'step-2');
    assert.match(result.error ?? '', /ring violation/);
    assert.deepEqual(result.compensationOrder, ['step-1']);
    assert.equal(calls[result.workflowId]!.filter((c) => c.stepId === 'step-2').length, 0, 'the denied step never ran');
  });

  it('runs a ring 1 step only after quorum approvals, and denies it at its deadline', async () => {
    const agents = { [alpha]: 0.97, [beta]: 0.8, 'did:mesh:gamma': 0.8 };
    const session = await activeSession(agents);
    const approved = await session.startSaga({
      steps: [{ actionId: 'wire-money', agentDid: alpha, handler: 'test.step', quorum: 2, approvalDeadlineSeconds: 120 }],
    });
    await eventually(() => session.audit(), (a) => a.trail.deltas.some((d) => d.changes[0]!.path.endsWith('/gate') && d.agentDid === alpha), 'the gate to wait');
    await approved.approve('step-1', alpha); // the acting agent's own approval does not count
    await approved.approve('step-1', beta);
    assert.equal((await approved.state()).saga.steps[0]!.state, 'pending');
    await approved.approve('step-1', 'did:mesh:gamma');
    const ok = await approved.result();
    assert.equal(ok.saga.state, 'completed');
    assert.deepEqual(ok.approvals['step-1'], [beta, 'did:mesh:gamma']);

    const late = await session.startSaga({
      steps: [{ actionId: 'wire-money', agentDid: alpha, handler: 'test.step', quorum: 2, approvalDeadlineSeconds: 2 }],
    });
    await late.approve('step-1', beta);
    const denied = await late.result();
    assert.equal(denied.saga.state, 'failed');
    assert.match(denied.error ?? '', /consensus.*deadline/);
  });

  it('runs a ring 0 step only after an SRE witness co-signs it', async () => {
    const session = await activeSession();
    await session.join({ agentDid: 'did:mesh:operator', sigmaRaw: 0.9, actions: [{ actionId: 'rotate-keys', admin: true, reversibility: 'FULL' }] });
    const saga = await session.startSaga({
      steps: [{ actionId: 'rotate-keys', agentDid: 'did:mesh:operator', handler: 'test.step', approvalDeadlineSeconds: 120 }],
    });
    await eventually(() => session.audit(), (a) => a.trail.deltas.some((d) => d.changes[0]!.path.endsWith('/gate') && d.agentDid === 'did:mesh:operator'), 'the gate to wait');
    await saga.witness('step-1', 'did:mesh:operator'); // the acting agent cannot witness itself
    assert.equal((await saga.state()).saga.steps[0]!.state, 'pending');
    const cosigned = Date.now();
    await saga.witness('step-1', 'did:mesh:sre-on-call');
    const result = await saga.result();
    assert.equal(result.saga.state, 'completed');
    assert.equal(result.witnesses['step-1'], 'did:mesh:sre-on-call');
    const ran = calls[result.workflowId]!.filter((c) => c.phase === 'execute');
    assert.equal(ran.length, 1);
    assert.ok(ran[0]!.at >= cosigned, 'the step ran only after the SRE witness, not after the agent witnessed itself');
  });

  it('governs a saga started directly by a client: a sandbox agent\'s write is denied and compensation follows', async () => {
    const session = await activeSession({ [alpha]: 0.85, 'did:mesh:sandboxed': 0.3 });
    const hv = await hypervisor();
    const saga = await hv.startSaga({
      sessionId: session.sessionId,
      sagaId: uniqueId('direct'),
      steps: [
        { actionId: 'draft', agentDid: alpha, handler: 'test.step' },
        { actionId: 'publish', agentDid: 'did:mesh:sandboxed', handler: 'test.step' },
      ],
    });
    const result = await saga.result();
    assert.equal(result.saga.state, 'compensated');
    assert.match(result.error ?? '', /ring violation.*σ_eff > 0.6/);
    const known = await eventually(() => session.sagas(), (s) => s.some((g) => g.sagaId === saga.sagaId && g.state === 'compensated'), 'the session to know the saga');
    assert.ok(known.length >= 1);
  });

  it('calls an HTTP tool with one idempotency key per step across retries, and its undo with another', async () => {
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
    try {
      const session = await activeSession();
      const saga = await session.startSaga({
        steps: [
          { actionId: 'draft', agentDid: alpha, executeApi: `${base}/execute`, undoApi: `${base}/undo`, retry: { maximumAttempts: 3, initialIntervalSeconds: 0.1 } },
          { actionId: 'publish', agentDid: alpha, handler: 'test.step', input: { failAttempts: -1 } },
        ],
      });
      const result = await saga.result();
      assert.equal(result.saga.state, 'compensated');
      const executes = seen.filter((s) => s.path === '/execute');
      const undos = seen.filter((s) => s.path === '/undo');
      assert.equal(executes.length, 2);
      assert.equal(new Set(executes.map((s) => s.key)).size, 1);
      assert.equal(executes[0]!.key, `${saga.handle.workflowId}/step-1/execute`);
      assert.deepEqual(undos.map((s) => s.key), [`${saga.handle.workflowId}/step-1/undo`]);
    } finally {
      server.close();
    }
  });

});
