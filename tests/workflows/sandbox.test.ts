import assert from 'node:assert/strict';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { testEnv } from '../helpers/env';
import { coreScenario } from '../fixtures/coreScenario';

describe('the governance core inside the workflow sandbox', function () {
  this.timeout(180_000);

  it('gives the same results bundled into a workflow as in plain Node', async () => {
    const env = await testEnv();
    const bundle = await bundleWorkflowCode({
      workflowsPath: require.resolve('../fixtures/coreWorkflow'),
      logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error: console.error },
    });
    const taskQueue = `${env.taskQueue}-sandbox`;
    const worker = await Worker.create({
      connection: env.nativeConnection,
      namespace: env.namespace,
      taskQueue,
      workflowBundle: bundle,
    });
    const inSandbox = await worker.runUntil(
      env.client.workflow.execute('coreScenarioWorkflow', {
        taskQueue,
        workflowId: `core-sandbox-${process.pid}-${Date.now()}`,
      }),
    );
    // The result crossed Temporal's JSON payload converter; compare like with like.
    assert.deepEqual(inSandbox, JSON.parse(JSON.stringify(coreScenario())));
  });
});
