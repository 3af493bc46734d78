/**
 * What another SDK gets back, checked against the JSON Schemas it would use:
 * real answers of every query, real results of both workflows (and of the
 * updates made on the way), from workflows on the test run's Temporal server,
 * validated with a JSON Schema validator against the generated files in
 * contract/ — not against the zod schemas they were generated from.
 */
import assert from 'node:assert/strict';
import { testEnv } from '../helpers/env';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { sagaAnswerOf, sagaSnapshotOf } from '../../src/client';
import {
  approveUpdate,
  checkActionUpdate,
  heldAgentQuery,
  sagaStateQuery,
  startSagaUpdate,
  stepGateQuery,
} from '../../workflows/definitions';
import { vfsFileQuery, vfsListQuery, vfsSnapshotUpdate, vfsWriteUpdate } from '../../workflows/definitions';
import { ACTIONS, asSre, SRE } from '../helpers/sessions';
import { eventually, hypervisor, uniqueId } from '../helpers/hv';

const CONTRACT = path.resolve(__dirname, '..', '..', 'contract');
const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';

const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
const validators = new Map<string, ValidateFunction>();
/** Contract files some answer was validated against. */
const checked = new Set<string>();

function validatorFor(file: string): ValidateFunction {
  let v = validators.get(file);
  if (!v) {
    v = ajv.compile(JSON.parse(fs.readFileSync(path.join(CONTRACT, file), 'utf8')) as object);
    validators.set(file, v);
  }
  return v;
}

/** Whether the value is valid under contract/<file>; errors as text when not. */
function validate(file: string, value: unknown): string | null {
  const v = validatorFor(file);
  return v(value) ? null : ajv.errorsText(v.errors, { separator: '\n  ' });
}

/** Assert the value — as it would arrive as JSON — is valid under contract/<file>; returns it. */
function conforms<T>(file: string, value: T): T {
  const json: unknown = JSON.parse(JSON.stringify(value));
  assert.deepEqual(json, value, `${file}: the value does not survive JSON (undefined or non-JSON values)`);
  const errors = validate(file, json);
  assert.equal(errors, null, `${file} rejects a real answer:\n  ${errors}\nanswer: ${JSON.stringify(json, null, 2)}`);
  checked.add(file);
  return value;
}

describe('contract: real answers and results conform to the JSON Schemas in contract/', function () {
  this.timeout(180_000);

  it('validates every query answer, both workflow results and the updates on the way', async () => {
    const hv = await hypervisor();
    const sessionId = uniqueId('contract');
    const session = await hv.createSession({
      sessionId,
      creatorDid: 'did:mesh:admin',
      config: { consensusQuorum: 1, sreWitnesses: [SRE] },
    });
    const { handle } = session;

    // Two agents: alpha may hold ring 1 (σ > 0.95, with consensus), beta ring 2. Their actions name the test executors.
    conforms('join.result.schema.json', await session.join({ agentDid: alpha, sigmaRaw: 0.97, actions: ACTIONS }));
    conforms('join.result.schema.json', await session.join({ agentDid: beta, sigmaRaw: 0.8, actions: ACTIONS }));
    conforms('activate.result.schema.json', await session.activate());
    conforms('vouch.result.schema.json', await session.vouch({ voucher: alpha, vouchee: beta, bondPct: 0.1 }));
    conforms(
      'checkAction.result.schema.json',
      await handle.executeUpdate(checkActionUpdate, { args: [{ agentDid: beta, actionId: 'draft' }] }),
    );

    // The VFS: a write and a snapshot.
    conforms(
      'vfsWrite.result.schema.json',
      await handle.executeUpdate(vfsWriteUpdate, {
        args: [{ agentDid: alpha, path: 'notes/plan.md', content: '# plan\n' }],
      }),
    );
    conforms(
      'vfsSnapshot.result.schema.json',
      await handle.executeUpdate(vfsSnapshotUpdate, {
        args: [{ agentDid: alpha, snapshotId: 'snap-1', label: 'before the sagas' }],
      }),
    );
    const listed = conforms('vfsList.answer.schema.json', await handle.query(vfsListQuery));
    assert.equal(listed.files.length, 1);
    assert.equal(listed.snapshots.length, 1);
    const file = conforms('vfsFile.answer.schema.json', await handle.query(vfsFileQuery, listed.files[0]!, beta));
    assert.deepEqual({ path: file.path, size: file.size }, { path: listed.files[0], size: 7 });
    assert.equal(await (await testEnv()).store.getFile(session.sessionId, file.contentHash), '# plan\n');

    // A saga that completes; its first step (ring 1) waits for an approval, so it is seen running.
    const started = conforms(
      'startSaga.result.schema.json',
      await handle.executeUpdate(startSagaUpdate, {
        args: [
          {
            sagaId: 'done',
            description: 'wire, then draft',
            steps: [
              { actionId: 'wire-money', agentDid: alpha, input: { to: 'acct-1' } },
              { actionId: 'draft', agentDid: beta },
            ],
          },
        ],
      }),
    );
    const done = hv.saga(sessionId, started.sagaId, started);
    const waiting = await eventually(
      () => done.handle.query(sagaStateQuery),
      (s) => s.waiting !== null,
      'the saga to wait for an approval',
    );
    conforms('sagaState.answer.schema.json', waiting);
    conforms('stepGate.answer.schema.json', await done.handle.query(stepGateQuery, 'step-1'));
    conforms('stepGate.answer.schema.json', await done.handle.query(stepGateQuery, 'no-such-step'));
    const grant = conforms(
      'stepGrant.answer.schema.json',
      await session.stepGrant({ sagaId: 'done', stepId: 'step-1' }),
    );
    assert.equal(grant.decision.waitFor, 'consensus');
    assert.ok(grant.agent && grant.action, 'the grant names the agent and the action');
    conforms('summary.answer.schema.json', await session.summary());
    conforms('sagas.answer.schema.json', await session.sagas());
    conforms(
      'approve.result.schema.json',
      await handle.executeUpdate(approveUpdate, {
        args: [{ sagaId: 'done', stepId: 'step-1', digest: started.digests['step-1']!, approverDid: beta }],
      }),
    );
    // The workflow's result is the compact outcome; the snapshot is the sagaState query (SagaHandle.result()).
    const completed = conforms('sagaWorkflow.result.schema.json', await done.handle.result());
    assert.ok('format' in completed && completed.state === 'completed', JSON.stringify(completed));
    const full = conforms('sagaState.answer.schema.json', await done.result());
    assert.equal(full.saga.state, 'completed');
    assert.deepEqual(full.grants['step-1']?.approvals, [beta]);
    conforms('sagaState.answer.schema.json', await done.state());

    // A saga that is compensated: its last step always fails, so the first is undone.
    const compensated = await session.startSaga({
      sagaId: 'undone',
      steps: [
        { actionId: 'draft', agentDid: alpha },
        { actionId: 'publish', agentDid: beta, input: { failAttempts: -1 } },
      ],
    });
    const failure = await compensated.handle.result().then(
      () => assert.fail('a compensated saga ends as a failed workflow'),
      (err: unknown) => err,
    );
    assert.ok(failure instanceof WorkflowFailedError, String(failure));
    assert.ok(failure.cause instanceof ApplicationFailure);
    assert.equal(failure.cause.type, 'SagaCompensated');
    const details = conforms('sagaWorkflow.result.schema.json', failure.cause.details?.[0]);
    assert.deepEqual(sagaAnswerOf(failure), details);
    assert.equal(sagaSnapshotOf(failure), undefined, 'the details are the compact outcome, not a snapshot');
    const snapshot = conforms('sagaState.answer.schema.json', await compensated.result());
    assert.equal(snapshot.saga.state, 'compensated');
    assert.deepEqual(snapshot.compensationOrder, ['step-1']);
    assert.equal(snapshot.failedStepId, 'step-2');
    conforms('sagaState.answer.schema.json', await compensated.state());

    // The session learns both outcomes.
    const sagas = await eventually(
      () => session.sagas(),
      (s) => s.length === 2 && s.every((g) => g.state !== 'running'),
      'the session to learn both outcomes',
    );
    conforms('sagas.answer.schema.json', sagas);
    assert.deepEqual(sagas.map((g) => g.state).sort(), ['compensated', 'completed']);

    // Controls (SPEC §12): each update's result, a summary that shows them, and a saga's heldAgent answer.
    conforms('heldAgent.answer.schema.json', await done.handle.query(heldAgentQuery, beta));
    conforms(
      'quarantine.result.schema.json',
      await (await asSre(session)).quarantine({ agentDid: beta, sreDid: SRE, reason: 'contract', ttlSeconds: 600 }),
    );
    conforms('summary.answer.schema.json', await session.summary());
    conforms('release.result.schema.json', await (await asSre(session)).release({ agentDid: beta, sreDid: SRE }));
    const elevation = conforms(
      'requestElevation.result.schema.json',
      await session.requestElevation({ agentDid: beta, ring: 2, justification: 'contract' }),
    );
    conforms(
      'approveElevation.result.schema.json',
      await session.approveElevation({
        agentDid: beta,
        elevationId: elevation.elevationId,
        digest: elevation.digest,
        approverDid: alpha,
      }),
    );
    // A turn (SPEC §13): its opening, an append, the session's view of it, its end.
    const opened = conforms('openTurn.result.schema.json', await session.send('openTurn', { agentDid: alpha }));
    const appended = conforms(
      'appendStep.result.schema.json',
      await session.send('appendStep', { sagaId: opened.sagaId, agentDid: alpha, actionId: 'draft' }),
    );
    const view: { turn: { next: { stepId: string } | null } } = conforms(
      'turnView.answer.schema.json',
      await session.handle.query('turnView', { sagaId: opened.sagaId }),
    );
    assert.equal(view.turn.next?.stepId, appended.stepId);
    // SPEC §14: no operator decided for this step (a turn never awaits one).
    const decided = conforms(
      'operatorDecision.answer.schema.json',
      await session.handle.query('operatorDecision', { sagaId: opened.sagaId, stepId: appended.stepId, round: 1 }),
    );
    assert.equal(decided, null);
    conforms('sagas.answer.schema.json', await session.sagas());
    conforms('endTurn.result.schema.json', await session.endTurn({ sagaId: opened.sagaId, agentDid: alpha }));
    conforms('summary.answer.schema.json', await session.summary());
    conforms('revokeElevation.result.schema.json', await session.revokeElevation({ agentDid: beta, byDid: beta }));

    // Every other query, then terminate, then the workflow's result.
    conforms('participant.answer.schema.json', await session.participant(alpha));
    assert.equal(conforms('participant.answer.schema.json', await session.participant('did:mesh:nobody')), null);
    const matrix = conforms('liabilityMatrix.answer.schema.json', await session.liability());
    assert.equal(matrix.bonds.length, 1);
    const head = conforms('auditHead.answer.schema.json', await session.auditHead());
    assert.equal(head.deltaCount, head.stored + head.pending.length);
    // The audit activity's read of a batch by reference: the pending deltas, while some are (a batch goes every 5 s).
    const pendingBatch = async (): Promise<void> => {
      const { pending } = await session.auditHead();
      if (pending.length === 0) return;
      const [fromTurn, through] = [pending[0]!.turn, pending[pending.length - 1]!.turn];
      const batch = await handle.query('pendingAuditBatch', { fromTurn, through }).catch((err: Error) => {
        if (/AUDIT_BATCH_UNREAD/.test(err.message)) return undefined; // stored meanwhile
        throw err;
      });
      if (batch !== undefined) conforms('pendingAuditBatch.answer.schema.json', batch);
    };
    await pendingBatch();
    conforms('summary.answer.schema.json', await session.summary());

    conforms(
      'kill.result.schema.json',
      await (await asSre(session)).kill({ agentDid: beta, sreDid: SRE, reason: 'contract' }),
    );
    await pendingBatch();
    conforms('summary.answer.schema.json', await session.summary());
    const terminated = conforms('terminate.result.schema.json', await session.terminate());
    assert.equal(terminated.releasedBonds, 1);
    assert.equal(terminated.purgedFiles, 1);
    const result = conforms('sessionWorkflow.result.schema.json', await handle.result());
    assert.deepEqual(result, terminated);
    const archived = conforms('summary.answer.schema.json', await session.summary());
    assert.ok(archived.commitment, 'an archived session holds its commitment');
    conforms('auditHead.answer.schema.json', await session.auditHead());
    conforms('vfsList.answer.schema.json', await handle.query(vfsListQuery));

    // Every query answer and both workflow results were checked against a real value.
    const expected = fs
      .readdirSync(CONTRACT)
      .filter((f) => f.endsWith('.answer.schema.json'))
      .concat('sessionWorkflow.result.schema.json', 'sagaWorkflow.result.schema.json');
    assert.deepEqual(
      expected.filter((f) => !checked.has(f)),
      [],
      'answers with no real value validated',
    );
  });

  it('the answer schemas are strict: an unknown field, a missing one or a wrong type is refused', async () => {
    const hv = await hypervisor();
    const session = await hv.createSession({ sessionId: uniqueId('contract-strict'), creatorDid: 'did:mesh:admin' });
    await session.join({ agentDid: alpha, sigmaRaw: 0.8 });
    const summary = await session.summary();
    assert.equal(validate('summary.answer.schema.json', summary), null);
    assert.notEqual(validate('summary.answer.schema.json', { ...summary, surprise: 1 }), null);
    const { merkleRoot: _dropped, ...missing } = summary;
    assert.notEqual(validate('summary.answer.schema.json', missing), null);
    assert.notEqual(validate('summary.answer.schema.json', { ...summary, deltaCount: '3' }), null);
    const participant = await session.participant(alpha);
    assert.notEqual(validate('participant.answer.schema.json', { ...participant, ring: 4 }), null);
    await session.terminate();
  });
});
