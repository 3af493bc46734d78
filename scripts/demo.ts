/**
 * `npm run demo`: against the running hypervisor (`npm start`), a session with
 * two agents, one saga that completes and one that fails at step 3 and
 * compensates steps 2 and 1. Prints each outcome with its Web UI link.
 */
import { HypervisorClient } from '../src/client';
import { loadConfig } from '../worker/config';
import { temporalAnswers } from '../worker/devServer';

const ACTIONS = [
  { actionId: 'draft-email', reversibility: 'FULL' as const },
  { actionId: 'reserve-budget', reversibility: 'PARTIAL' as const, riskWeight: 0.6 },
  { actionId: 'send-email', reversibility: 'PARTIAL' as const },
];

async function main(): Promise<void> {
  const config = loadConfig();
  if (!(await temporalAnswers(config.address))) {
    throw new Error(`no Temporal server answers at ${config.address}: run \`npm start\` in another terminal first`);
  }
  const hv = await HypervisorClient.connect({ address: config.address, namespace: config.namespace, taskQueue: config.taskQueue });
  const ui = (workflowId: string) =>
    `http://127.0.0.1:${config.uiPort}/namespaces/${config.namespace}/workflows/${encodeURIComponent(workflowId)}`;
  try {
    const sessionId = `demo-${new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14)}`;
    const session = await hv.createSession({ sessionId, creatorDid: 'did:mesh:admin' });
    console.log(`Session ${sessionId} created\n  ${ui(session.handle.workflowId)}`);

    for (const [agentDid, sigmaRaw] of [['did:mesh:alpha', 0.85], ['did:mesh:beta', 0.72]] as const) {
      const joined = await session.join({ agentDid, sigmaRaw, actions: ACTIONS });
      console.log(`  ${agentDid} joined: σ_eff ${joined.sigmaEff.toFixed(2)}, ring ${joined.ring}`);
    }
    await session.activate();

    const steps = (failAtStep3: boolean) => [
      { actionId: 'draft-email', agentDid: 'did:mesh:alpha', handler: 'demo.draft-email', input: { to: 'board@example.com' } },
      { actionId: 'reserve-budget', agentDid: 'did:mesh:beta', handler: 'demo.reserve-budget', input: { amount: 1200 } },
      {
        actionId: 'send-email', agentDid: 'did:mesh:alpha', handler: 'demo.send-email',
        input: { simulateOutage: failAtStep3 },
        retry: { maximumAttempts: 3, initialIntervalSeconds: 1, backoffCoefficient: 2 },
      },
    ];

    for (const [sagaId, fail] of [['send-report', false], ['send-report-outage', true]] as const) {
      const saga = await session.startSaga({ sagaId, description: fail ? 'mail gateway down at step 3' : 'draft, reserve, send', steps: steps(fail) });
      process.stdout.write(`Saga ${sagaId} running `);
      const ticker = setInterval(() => process.stdout.write('.'), 500);
      const result = await saga.result().finally(() => clearInterval(ticker));
      console.log(` ${result.saga.state}`);
      for (const s of result.saga.steps) console.log(`    ${s.stepId} ${s.actionId.padEnd(15)} ${s.agentDid.padEnd(16)} ${s.state}${s.attempts > 1 ? ` after ${s.attempts} attempts` : ''}`);
      if (result.compensationOrder.length) console.log(`    compensated in order: ${result.compensationOrder.join(' → ')}`);
      console.log(`  ${ui(saga.handle.workflowId)}`);
    }

    const { verification } = await session.verifyAudit();
    const ended = await session.terminate();
    console.log(`Session terminated: ${ended.commitment.deltaCount} deltas, Merkle root ${ended.commitment.merkleRoot}`);
    console.log(`  audit chain verified offline: ${verification.ok ? 'OK' : `BROKEN — ${verification.reason}`}`);
    console.log(`  anchor: ${ended.commitment.anchorTxId}`);
  } finally {
    await hv.close();
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
