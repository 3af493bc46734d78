/**
 * The `temporal` CLI as a client of the contract: `temporal workflow start
 * --type sagaWorkflow` with the documented JSON on a session the TypeScript
 * client created, then `temporal workflow result`, `query` and `list` with a
 * visibility query on the project's search attributes. The saga must be
 * governed exactly like one the TypeScript client starts.
 */
import assert from 'node:assert/strict';
import type { SagaSnapshot } from '../../workflows/sagaTypes';
import { ensureTemporalCli } from '../../worker/temporalCli';
import { testEnv } from '../helpers/env';
import { eventually, uniqueId } from '../helpers/hv';
import { assertGovernedLike, referenceOutcome, sagaInput, sandboxSession, SANDBOXED, TRUSTED } from './helpers/governance';
import { runOk, stopProcesses } from './helpers/processes';

/** The CLI's environment without TEMPORAL_* settings, so only the flags below decide where it connects. */
function cliEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TEMPORAL_')));
}

describe('e2e: a saga started with the temporal CLI', function () {
  this.timeout(120_000);
  let cli: string;

  before(async function () {
    this.timeout(30 * 60_000);
    cli = await ensureTemporalCli((line) => console.log(`      ${line}`));
  });

  after(() => stopProcesses());

  it('is governed exactly like a TypeScript-started saga: the sandboxed write is denied, the trusted step compensated', async () => {
    const env = await testEnv();
    const connect = ['--address', env.address, '--namespace', env.namespace];
    const temporal = async (args: string[]) => JSON.parse(await runOk(cli, [...args, ...connect, '-o', 'json'], { env: cliEnv(), timeoutMs: 60_000 }));

    const session = await sandboxSession();
    const reference = await referenceOutcome(session, uniqueId('ts'));

    const sagaId = uniqueId('cli');
    const workflowId = `hv-saga-${session.sessionId}-${sagaId}`;
    const started = await temporal([
      'workflow', 'start', '--type', 'sagaWorkflow', '--task-queue', env.taskQueue, '--workflow-id', workflowId,
      '--input', JSON.stringify(sagaInput(session.sessionId, sagaId, 'the temporal CLI')),
      '--search-attribute', `HvSessionId=${JSON.stringify(session.sessionId)}`,
      '--search-attribute', `HvAgentDids=${JSON.stringify([SANDBOXED, TRUSTED].sort())}`,
      '--static-summary', `Saga ${sagaId} of session ${session.sessionId} (started with the temporal CLI)`,
    ]);
    assert.equal(started.workflowId, workflowId);
    assert.equal(started.type, 'sagaWorkflow');

    const outcome = await temporal(['workflow', 'result', '--workflow-id', workflowId]);
    assert.equal(outcome.status, 'COMPLETED');
    const result = outcome.closeEvent.workflowExecutionCompletedEventAttributes.result[0] as SagaSnapshot;
    await assertGovernedLike(session, sagaId, result, reference);

    const queried = await temporal(['workflow', 'query', '--workflow-id', workflowId, '--name', 'sagaState']);
    assert.deepEqual(queried.queryResult[0], result, 'the sagaState query answers the result');

    // Both sagas of the session, found by a visibility query on the project's search attributes.
    const query = `HvSessionId="${session.sessionId}" AND HvSagaState="compensated"`;
    const listed = await eventually(
      async () => ((await temporal(['workflow', 'list', '--query', query])) as { execution: { workflowId: string } }[]).map((w) => w.execution.workflowId).sort(),
      (ids) => ids.length >= 2,
      `temporal workflow list --query '${query}' to list both sagas`,
    );
    assert.deepEqual(listed, [`hv-saga-${session.sessionId}-${reference.sagaId}`, workflowId].sort());
  });
});
