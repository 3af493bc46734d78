/**
 * `npm run demo`: against the running hypervisor (`npm start`), a session with
 * two agents, who declare at join what runs each action (the demo's handlers);
 * one saga that completes and one that fails at step 3 and compensates steps 2
 * and 1. Sagas are started through the session (`startSaga`); a saga that
 * compensated ends as a failed workflow, and `saga.result()` still gives its
 * snapshot. Prints each outcome with its Web UI link.
 */
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { DEMO_ACTIONS } from '../activities/demoHandlers';
import { HypervisorClient } from '../src/client';
import type { StartSagaRequest } from '../src/contract';
import { loadConfig } from '../worker/config';
import { temporalAnswers } from '../worker/devServer';

const ALPHA = 'did:mesh:alpha';
const BETA = 'did:mesh:beta';

/** The steps name only the action, the agent and the input: what runs was declared at join. */
function steps(outageAtStep3: boolean): StartSagaRequest['steps'] {
  return [
    { actionId: 'draft-email', agentDid: ALPHA, input: { to: 'board@example.com' } },
    { actionId: 'reserve-budget', agentDid: BETA, input: { amount: 1200 } },
    {
      actionId: 'send-email',
      agentDid: ALPHA,
      input: { simulateOutage: outageAtStep3 },
      retry: { maximumAttempts: 3, initialIntervalSeconds: 1, backoffCoefficient: 2 },
    },
  ];
}

/** How the saga's workflow ended, as the Web UI lists it: Completed, or Failed with the failure's type. */
async function workflowOutcome(handle: WorkflowHandle): Promise<string> {
  try {
    await handle.result();
    return 'Completed';
  } catch (err) {
    const cause = err instanceof WorkflowFailedError ? err.cause : undefined;
    return `Failed: ${cause instanceof ApplicationFailure ? cause.type : (err as Error).message}`;
  }
}

/**
 * The session learns a saga's outcome from its child's completion, a moment
 * after the client does: wait for it before going on (and before terminating,
 * which closes the audit).
 */
async function recordedState(
  sagas: () => Promise<{ sagaId: string; state: string }[]>,
  sagaId: string,
): Promise<string> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const state = (await sagas()).find((g) => g.sagaId === sagaId)?.state ?? 'unknown';
    if (state !== 'running' || Date.now() > deadline) return state;
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function main(): Promise<void> {
  const config = loadConfig();
  if (!(await temporalAnswers(config.address))) {
    throw new Error(`no Temporal server answers at ${config.address}: run \`npm start\` in another terminal first`);
  }
  const hv = await HypervisorClient.connect({
    address: config.address,
    namespace: config.namespace,
    taskQueue: config.taskQueue,
  });
  const ui = (workflowId: string) =>
    `http://127.0.0.1:${config.uiPort}/namespaces/${config.namespace}/workflows/${encodeURIComponent(workflowId)}`;
  try {
    const sessionId = `demo-${new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14)}`;
    const session = await hv.createSession({ sessionId, creatorDid: 'did:mesh:admin' });
    console.log(`Session ${sessionId} created\n  ${ui(session.handle.workflowId)}`);

    for (const [agentDid, sigmaRaw] of [
      [ALPHA, 0.85],
      [BETA, 0.72],
    ] as const) {
      const joined = await session.join({ agentDid, sigmaRaw, actions: DEMO_ACTIONS });
      console.log(
        `  ${agentDid} joined: σ_eff ${joined.sigmaEff.toFixed(2)}, ring ${joined.ring}; declared ${DEMO_ACTIONS.map((a) => `${a.actionId} (${a.executeApi})`).join(', ')}`,
      );
    }
    await session.activate();

    for (const [sagaId, outage] of [
      ['send-report', false],
      ['send-report-outage', true],
    ] as const) {
      const saga = await session.startSaga({
        sagaId,
        description: outage ? 'mail gateway down at step 3' : 'draft, reserve, send',
        steps: steps(outage),
      });
      process.stdout.write(`Saga ${sagaId} running `);
      const ticker = setInterval(() => process.stdout.write('.'), 500);
      // The snapshot whether the saga completed or ended compensated (a failed workflow carrying it).
      const result = await saga.result().finally(() => clearInterval(ticker));
      console.log(` ${result.saga.state} (workflow ${await workflowOutcome(saga.handle)})`);
      if (result.failedStepId) console.log(`    failed at ${result.failedStepId}: ${result.error}`);
      for (const s of result.saga.steps)
        console.log(
          `    ${s.stepId} ${s.actionId.padEnd(15)} ${s.agentDid.padEnd(16)} ${s.state}${s.attempts > 1 ? ` after ${s.attempts} attempts` : ''}`,
        );
      if (result.compensationOrder.length)
        console.log(`    compensated in order: ${result.compensationOrder.join(' → ')}`);
      console.log(`    the session recorded it as ${await recordedState(() => session.sagas(), sagaId)}`);
      console.log(`  ${ui(saga.handle.workflowId)}`);
    }

    const { verification } = await session.verifyAudit();
    const ended = await session.terminate();
    console.log(
      `Session terminated: ${ended.commitment.deltaCount} deltas, Merkle root ${ended.commitment.merkleRoot}`,
    );
    console.log(`  audit chain verified offline: ${verification.ok ? 'OK' : `BROKEN — ${verification.reason}`}`);
    console.log(`  anchor: ${ended.commitment.anchorTxId}`);
    // A broken chain is the demo failing, whatever else it printed (issue 23).
    if (!verification.ok) process.exitCode = 4;
  } finally {
    await hv.close();
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
