/**
 * The Temporal Python SDK as a client of the contract: a Python script starts a
 * saga on a session the TypeScript client created, through the session's
 * "startSaga" update with plain JSON, then waits on the saga workflow the
 * session started, on the shared test server. The saga must be governed
 * exactly like one the TypeScript client starts: the sandboxed agent's write is
 * denied and the trusted agent's step is compensated — so the saga ends as a
 * failed workflow, and the script still gets its snapshot from the failure.
 * A sagaWorkflow the script starts directly is refused.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { ensurePythonVenv } from '../../scripts/e2eTools';
import { sagaWorkflowId } from '../../src/contract/messages';
import type { SagaSnapshot } from '../../src/contract/sagaTypes';
import type { SagaOutcome } from '../../src/contract/sagaOutcome';
import { HvAgentDids, HvSagaState, HvSessionId } from '../../src/contract/searchAttributes';
import { testEnv } from '../helpers/env';
import { hypervisor, uniqueId } from '../helpers/hv';
import {
  assertGovernedLike,
  assertRefusedDirectStart,
  forgedSagaInput,
  referenceOutcome,
  sagaRequest,
  sandboxSession,
  SANDBOXED,
  TRUSTED,
} from './helpers/governance';
import { runOk, stopProcesses } from './helpers/processes';
import { activeSession } from '../helpers/sessions';

const SCRIPT = path.join(__dirname, 'python', 'start_saga.py');

interface ScriptOutput {
  started?: { sagaId: string; workflowId: string; digests: Record<string, string> };
  workflowId: string;
  status: 'COMPLETED' | 'FAILED';
  failureType: string | null;
  failureMessage: string | null;
  /** What the saga's workflow answered: its compact outcome. */
  outcome?: SagaOutcome;
  result?: SagaSnapshot;
  query?: SagaSnapshot;
  rateLimited?: number;
}

describe('e2e: a saga started from the Temporal Python SDK', function () {
  this.timeout(120_000);
  let python: string;

  before(async function () {
    // Creates the virtualenv with temporalio the first time on this machine (cached afterwards).
    this.timeout(10 * 60_000);
    python = await ensurePythonVenv((line) => console.log(`      ${line}`));
  });

  after(() => stopProcesses());

  async function runScriptLines(args: string[]): Promise<ScriptOutput[]> {
    const env = await testEnv();
    const stdout = await runOk(
      python,
      [SCRIPT, '--address', env.address, '--namespace', env.namespace, '--task-queue', env.taskQueue, ...args],
      {
        env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', PYTHONUNBUFFERED: '1' },
        timeoutMs: 90_000,
      },
    );
    return stdout
      .trim()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as ScriptOutput);
  }
  const runScript = async (args: string[]) => (await runScriptLines(args)).pop()!;

  it('is governed exactly like a TypeScript-started saga: the sandboxed write is denied, the trusted step compensated', async () => {
    const session = await sandboxSession();
    const reference = await referenceOutcome(session, uniqueId('ts'));

    const sagaId = uniqueId('py');
    const out = await runScript([
      '--session-id',
      session.sessionId,
      '--request',
      JSON.stringify(sagaRequest(sagaId, 'Python')),
    ]);

    // The saga's workflow: as the session answered it, in the contract's form (docs/CONTRACT.md).
    const workflowId = sagaWorkflowId(session.sessionId, sagaId);
    assert.equal(out.workflowId, workflowId);
    assert.deepEqual(
      out.started && {
        sagaId: out.started.sagaId,
        workflowId: out.started.workflowId,
        steps: Object.keys(out.started.digests),
      },
      { sagaId, workflowId, steps: ['step-1', 'step-2'] },
      'startSaga answered the saga, its workflow and its step digests',
    );
    // Compensated: a failed workflow, whose failure carries the compact outcome; the snapshot is the query's.
    assert.equal(out.status, 'FAILED');
    assert.equal(out.failureType, 'SagaCompensated');
    assert.deepEqual(
      [out.outcome?.format, out.outcome?.state, out.outcome?.failedStepId],
      [4, 'compensated', 'step-2'],
    );
    assert.match(out.failureMessage ?? '', new RegExp(`^saga ${sagaId} compensated: ring violation`));
    await assertGovernedLike(session, sagaId, out.result!, reference);
    assert.deepEqual(out.result!.digests, out.started!.digests, 'the saga runs the steps the session answered');
    assert.deepEqual(out.query, out.result, 'the sagaState query answers the snapshot');

    // The session started the saga as its child, with the search attributes; the saga set its state.
    const description = await (
      await hypervisor()
    )
      .saga(session.sessionId, sagaId, { workflowId: out.workflowId })
      .handle.describe();
    assert.equal(description.type, 'sagaWorkflow');
    assert.equal(description.status.name, 'FAILED');
    assert.equal(description.parentExecution?.workflowId, `hv-session-${session.sessionId}`);
    assert.equal(description.typedSearchAttributes.get(HvSessionId), session.sessionId);
    assert.deepEqual(description.typedSearchAttributes.get(HvAgentDids), [SANDBOXED, TRUSTED].sort());
    assert.equal(description.typedSearchAttributes.get(HvSagaState), 'compensated');
  });

  it('cannot start a sagaWorkflow directly: it fails with SAGA_NOT_STARTED_BY_SESSION, saying how to start a saga', async () => {
    const session = await sandboxSession();
    const sagaId = uniqueId('py-direct');
    const out = await runScript(['--direct-input', JSON.stringify(forgedSagaInput(session.sessionId, sagaId))]);
    assert.equal(out.status, 'FAILED');
    await assertRefusedDirectStart(session, sagaId, out.workflowId, {
      type: out.failureType,
      message: out.failureMessage,
    });
  });

  it('waits out RATE_LIMITED for the retryAfterMs the session names, as the TypeScript client does: every saga starts', async () => {
    // One step start per 2 s, a burst of one: the second and third sagas are refused first, with when to retry.
    const slow = { perSecond: 0.5, burst: 1 };
    const session = await activeSession(
      { [TRUSTED]: 0.85 },
      { controls: { rateLimits: { ring1: slow, ring2: slow, ring3: slow } } },
    );
    const sagaId = uniqueId('py-rate');
    const outs = await runScriptLines([
      '--session-id',
      session.sessionId,
      '--count',
      '3',
      '--request',
      JSON.stringify({ sagaId, steps: [{ actionId: 'draft', agentDid: TRUSTED }] }),
    ]);
    assert.deepEqual(
      outs.map((o) => [o.started?.sagaId, o.status]),
      [1, 2, 3].map((i) => [`${sagaId}-${i}`, 'COMPLETED']),
    );
    assert.equal(outs[0]!.rateLimited, 0);
    assert.ok(outs[1]!.rateLimited! >= 1 && outs[2]!.rateLimited! >= 1, JSON.stringify(outs.map((o) => o.rateLimited)));
    assert.deepEqual(
      (await session.sagas()).map((s) => s.sagaId).sort(),
      [1, 2, 3].map((i) => `${sagaId}-${i}`),
      'one saga per start: a refused request started nothing',
    );
  });
});
