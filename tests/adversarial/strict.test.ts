/**
 * A contract strict everywhere (issue 23): no request is silently trimmed.
 * Every update's argument schema refuses keys it does not know; the typo a Go
 * client made (`sigma_raw`) and a config key at the wrong level
 * (`sreWitnesses`) are refused naming the key.
 */
import assert from 'node:assert/strict';
import { MESSAGES } from '../../src/contract/messages';
import { contractFiles } from '../../src/contract/schemas';
import { WithStartWorkflowOperation } from '@temporalio/client';
import { openSession, rawClient, refusal, refused, sessionWorkflowId, uid } from './raw';

describe('a strict contract: unknown keys are refused by name', function () {
  this.timeout(120_000);

  it('every update argument and the session input refuse additional properties (contract/*.schema.json)', () => {
    const files = contractFiles();
    const names = [
      ...Object.entries(MESSAGES)
        .filter(([, m]) => m.kind === 'update')
        .map(([n]) => n),
      'sessionWorkflow',
    ];
    for (const name of names) {
      const text = files[`${name}.schema.json`];
      assert.ok(text, `contract/${name}.schema.json exists`);
      const schema = JSON.parse(text) as {
        type?: string;
        additionalProperties?: unknown;
        anyOf?: { type?: string; additionalProperties?: unknown }[];
      };
      const objects = [schema, ...(schema.anyOf ?? [])].filter((s) => s.type === 'object');
      assert.ok(objects.length > 0, `${name}: an object schema`);
      for (const o of objects) assert.equal(o.additionalProperties, false, `${name}: unknown keys are refused`);
    }
  });

  it('a join with a misspelled field (sigma_raw) is refused naming it, and nobody joins', async () => {
    const session = await openSession({ 'did:mesh:alpha': 0.8 }, {}, { activate: false });
    await refused(session.update('join', { agentDid: 'did:mesh:beta', sigma_raw: 0.95 }), 'INVALID_INPUT', 'sigma_raw');
    assert.equal(await session.participant('did:mesh:beta'), null);
  });

  it('a session input with a config key at the top level (sreWitnesses) fails its start naming the key', async () => {
    const { client, taskQueue } = await rawClient();
    const id = uid('strict');
    const handle = await client.workflow.start('sessionWorkflow', {
      taskQueue,
      workflowId: sessionWorkflowId(id),
      args: [{ sessionId: id, creatorDid: 'did:mesh:admin', sreWitnesses: ['did:mesh:sre'] }],
    });
    await refused(handle.result(), 'INVALID_INPUT', 'sreWitnesses');
  });

  it("an update sent with a start that cannot start a session (update-with-start) is answered the start's error, not 'no handler'", async () => {
    const { client, taskQueue } = await rawClient();
    const id = uid('strict');
    const start = new WithStartWorkflowOperation('sessionWorkflow', {
      taskQueue,
      workflowId: sessionWorkflowId(id),
      args: [{ sessionId: id, creatorDid: 'did:mesh:admin', sreWitnesses: ['did:mesh:sre'] }],
      workflowIdConflictPolicy: 'FAIL',
    });
    const failure = await refusal(
      client.workflow.executeUpdateWithStart('join', {
        args: [{ agentDid: 'did:mesh:alpha' }],
        startWorkflowOperation: start,
      }),
    );
    assert.equal(failure.type, 'INVALID_INPUT', failure.message);
    assert.match(failure.message, /sreWitnesses/);
    await refused((await start.workflowHandle()).result(), 'INVALID_INPUT', 'sreWitnesses');
  });
});
