/**
 * The Temporal Python SDK as a client of the contract: a Python script starts a
 * saga on a session the TypeScript client created, by the workflow type name
 * "sagaWorkflow" and plain JSON, on the shared test server. The saga must be
 * governed exactly like one the TypeScript client starts: the sandboxed agent's
 * write is denied and the trusted agent's step is compensated.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { ensurePythonVenv } from '../../scripts/e2eTools';
import type { SagaSnapshot } from '../../workflows/sagaTypes';
import { HvAgentDids, HvSagaState, HvSessionId } from '../../workflows/searchAttributes';
import { testEnv } from '../helpers/env';
import { hypervisor, uniqueId } from '../helpers/hv';
import { assertGovernedLike, referenceOutcome, sagaInput, sandboxSession, SANDBOXED, TRUSTED } from './helpers/governance';
import { runOk, stopProcesses } from './helpers/processes';

const SCRIPT = path.join(__dirname, 'python', 'start_saga.py');

describe('e2e: a saga started from the Temporal Python SDK', function () {
  this.timeout(120_000);
  let python: string;

  before(async function () {
    // Creates the virtualenv with temporalio the first time on this machine (cached afterwards).
    this.timeout(10 * 60_000);
    python = await ensurePythonVenv((line) => console.log(`      ${line}`));
  });

  after(() => stopProcesses());

  it('is governed exactly like a TypeScript-started saga: the sandboxed write is denied, the trusted step compensated', async () => {
    const env = await testEnv();
    const session = await sandboxSession();
    const reference = await referenceOutcome(session, uniqueId('ts'));

    const sagaId = uniqueId('py');
    const input = sagaInput(session.sessionId, sagaId, 'Python');
    const stdout = await runOk(python, [SCRIPT, '--address', env.address, '--namespace', env.namespace, '--task-queue', env.taskQueue, '--input', JSON.stringify(input)], {
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', PYTHONUNBUFFERED: '1' },
      timeoutMs: 90_000,
    });
    const out = JSON.parse(stdout.trim().split('\n').pop()!) as { workflowId: string; result: SagaSnapshot; query: SagaSnapshot };

    assert.equal(out.workflowId, `hv-saga-${session.sessionId}-${sagaId}`);
    await assertGovernedLike(session, sagaId, out.result, reference);
    assert.deepEqual(out.query, out.result, 'the sagaState query answers the result');

    // The Python client set the search attributes, as the contract asks; the saga set its state.
    const description = await (await hypervisor()).saga(session.sessionId, sagaId).handle.describe();
    assert.equal(description.type, 'sagaWorkflow');
    assert.equal(description.typedSearchAttributes.get(HvSessionId), session.sessionId);
    assert.deepEqual(description.typedSearchAttributes.get(HvAgentDids), [SANDBOXED, TRUSTED].sort());
    assert.equal(description.typedSearchAttributes.get(HvSagaState), 'compensated');
  });
});
