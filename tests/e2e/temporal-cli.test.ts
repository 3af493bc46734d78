/**
 * The `temporal` CLI as a client of the contract: `temporal workflow update
 * execute --name startSaga` with the documented JSON on a session the
 * TypeScript client created, then `temporal workflow result`, `query` and
 * `list` with a visibility query on the project's search attributes. The saga
 * must be governed exactly like one the TypeScript client starts; compensated,
 * it ends as a failed workflow whose failure carries its compact outcome (its
 * snapshot is the sagaState query). A
 * sagaWorkflow started directly with `temporal workflow start` is refused.
 */
import assert from 'node:assert/strict';
import { sagaWorkflowId } from '../../src/contract/messages';
import type { SagaSnapshot } from '../../src/contract/sagaTypes';
import type { SagaOutcome } from '../../src/contract/sagaOutcome';
import { ensureTemporalCli } from '../../worker/temporalCli';
import { testEnv } from '../helpers/env';
import { eventually, uniqueId } from '../helpers/hv';
import {
  assertGovernedLike,
  assertRefusedDirectStart,
  forgedSagaInput,
  referenceOutcome,
  sagaRequest,
  sandboxSession,
} from './helpers/governance';
import { runProcess, stopProcesses } from './helpers/processes';

/** The CLI's environment without TEMPORAL_* settings, so only the flags below decide where it connects. */
function cliEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TEMPORAL_')));
}

/** What `temporal workflow result -o json` prints about a failed workflow. */
interface FailedResult {
  status: string;
  closeEvent: {
    workflowExecutionFailedEventAttributes: {
      failure: {
        message: string;
        applicationFailureInfo?: { type?: string; nonRetryable?: boolean; details?: unknown[] };
      };
    };
  };
}

describe('e2e: a saga started with the temporal CLI', function () {
  this.timeout(120_000);
  let cli: string;

  before(async function () {
    this.timeout(30 * 60_000);
    cli = await ensureTemporalCli((line) => console.log(`      ${line}`));
  });

  after(() => stopProcesses());

  /**
   * Runs `temporal … -o json` and parses what it printed. `workflow result`
   * exits 1 for a workflow that failed, still printing the JSON: expectFailure
   * accepts that exit.
   */
  async function temporal(args: string[], expectFailure = false) {
    const env = await testEnv();
    const full = [...args, '--address', env.address, '--namespace', env.namespace, '-o', 'json'];
    const r = await runProcess(cli, full, { env: cliEnv(), timeoutMs: 60_000 });
    const ok = r.code === 0 || (expectFailure && r.code === 1 && r.stdout.trim().startsWith('{'));
    if (!ok)
      throw new Error(
        `temporal ${full.join(' ')} exited with ${r.code ?? r.signal}:\n${r.stderr.slice(-4000)}${r.stdout.slice(-2000)}`,
      );
    return JSON.parse(r.stdout);
  }

  it('is governed exactly like a TypeScript-started saga: the sandboxed write is denied, the trusted step compensated', async () => {
    const session = await sandboxSession();
    const sessionWid = `hv-session-${session.sessionId}`;
    const reference = await referenceOutcome(session, uniqueId('ts'));

    const sagaId = uniqueId('cli');
    const started = await temporal([
      'workflow',
      'update',
      'execute',
      '--workflow-id',
      sessionWid,
      '--name',
      'startSaga',
      '--input',
      JSON.stringify(sagaRequest(sagaId, 'the temporal CLI')),
    ]);
    assert.equal(started.name, 'startSaga');
    assert.equal(started.result.sagaId, sagaId);
    // The saga's workflow: as the session answered it, in the contract's form (docs/CONTRACT.md).
    const workflowId: string = started.result.workflowId;
    assert.equal(workflowId, sagaWorkflowId(session.sessionId, sagaId));
    assert.deepEqual(Object.keys(started.result.digests).sort(), ['step-1', 'step-2']);

    // Compensated: a failed workflow, its failure of type SagaCompensated with the compact outcome in details[0].
    const outcome = (await temporal(['workflow', 'result', '--workflow-id', workflowId], true)) as FailedResult;
    assert.equal(outcome.status, 'FAILED');
    const failure = outcome.closeEvent.workflowExecutionFailedEventAttributes.failure;
    assert.equal(failure.applicationFailureInfo?.type, 'SagaCompensated');
    assert.equal(failure.applicationFailureInfo?.nonRetryable, true);
    assert.match(failure.message, new RegExp(`^saga ${sagaId} compensated: ring violation`));
    const compact = failure.applicationFailureInfo?.details?.[0] as SagaOutcome;
    assert.deepEqual([compact.format, compact.state], [4, 'compensated']);
    assert.ok(!('sagaId' in compact), 'format 4 leaves out the id its session started it under');

    // The full snapshot is the sagaState query, which the closed saga answers.
    const queried = await temporal(['workflow', 'query', '--workflow-id', workflowId, '--name', 'sagaState']);
    const result = queried.queryResult[0] as SagaSnapshot;
    await assertGovernedLike(session, sagaId, result, reference);
    assert.deepEqual(result.digests, started.result.digests, 'the saga runs the steps the session answered');
    assert.equal(result.error, compact.error, 'the outcome and the snapshot tell the same end');

    // Both sagas of the session, found by a visibility query on the project's search attributes and their status.
    const query = `HvSessionId="${session.sessionId}" AND HvSagaState="compensated" AND ExecutionStatus="Failed"`;
    const listed = await eventually(
      async () =>
        ((await temporal(['workflow', 'list', '--query', query])) as { execution: { workflowId: string } }[])
          .map((w) => w.execution.workflowId)
          .sort(),
      (ids) => ids.length >= 2,
      `temporal workflow list --query '${query}' to list both sagas`,
    );
    assert.deepEqual(listed, [reference.workflowId, workflowId].sort());
  });

  it('refuses a startSaga request that names what to run: that is declared at join', async () => {
    const session = await sandboxSession();
    const request = sagaRequest(uniqueId('cli-handler'), 'the temporal CLI');
    const withHandler = { ...request, steps: [{ ...request.steps[0], handler: 'test.step' }] };
    const env = await testEnv();
    const historyLength = async () => (await session.handle.fetchHistory()).events?.length ?? 0;
    const before = await historyLength();
    const r = await runProcess(
      cli,
      [
        'workflow',
        'update',
        'execute',
        '--workflow-id',
        `hv-session-${session.sessionId}`,
        '--name',
        'startSaga',
        '--input',
        JSON.stringify(withHandler),
        '--address',
        env.address,
        '--namespace',
        env.namespace,
      ],
      { env: cliEnv(), timeoutMs: 60_000 },
    );
    assert.notEqual(r.code, 0);
    // (the CLI's log escapes the quotes)
    assert.match(r.stderr, /invalid startSaga: steps\.0: Unrecognized key: \\?"handler\\?"/);
    assert.match(r.stderr, /INVALID_INPUT/);
    assert.deepEqual(await session.sagas(), [], 'no saga was started');
    assert.equal(await historyLength(), before, "the validator refused it: the session's history has no event of it");
  });

  it('cannot start a sagaWorkflow directly: it fails with SAGA_NOT_STARTED_BY_SESSION, saying how to start a saga', async () => {
    const env = await testEnv();
    const session = await sandboxSession();
    const sagaId = uniqueId('cli-direct');
    // The id a session would give the saga: a direct start under it is still refused.
    const workflowId = sagaWorkflowId(session.sessionId, sagaId);
    const started = await temporal([
      'workflow',
      'start',
      '--type',
      'sagaWorkflow',
      '--task-queue',
      env.taskQueue,
      '--workflow-id',
      workflowId,
      '--input',
      JSON.stringify(forgedSagaInput(session.sessionId, sagaId)),
    ]);
    assert.equal(started.workflowId, workflowId);

    const outcome = (await temporal(['workflow', 'result', '--workflow-id', workflowId], true)) as FailedResult;
    assert.equal(outcome.status, 'FAILED');
    const failure = outcome.closeEvent.workflowExecutionFailedEventAttributes.failure;
    await assertRefusedDirectStart(session, sagaId, workflowId, {
      type: failure.applicationFailureInfo?.type ?? null,
      message: failure.message,
    });
  });
});
