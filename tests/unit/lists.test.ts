import assert from 'node:assert/strict';
import { approvalQuery, limitOf, queryLiteral, sagaIdOf, sagaQuery, sessionQuery } from '../../src/client/lists';
import { parsePendingApproval, pendingApprovalEntry } from '../../src/contract/searchAttributes';

describe('lists: visibility queries and the pending-approval index (issue 13)', () => {
  it('quotes a value as a string literal: quotes and backslashes escaped, ":" as it is', () => {
    assert.equal(queryLiteral('did:mesh:alpha', 'agentDid'), "'did:mesh:alpha'");
    assert.equal(queryLiteral('a\'b\\c"d', 'agentDid'), "'a\\'b\\\\c\"d'");
    assert.equal(queryLiteral("' OR 1=1 --", 'agentDid'), "'\\' OR 1=1 --'");
  });

  it('refuses control characters, empty, oversized and non-string values, naming the field', () => {
    for (const [value, message] of [
      ['did:mesh:a\nb', /^--agent holds a control character \(U\+000a\) at character 11$/],
      ['x\u0000', /^--agent holds a control character \(U\+0000\)/],
      ['x\u007f', /^--agent holds a control character \(U\+007f\)/],
      ['', /^--agent must not be empty$/],
      ['x'.repeat(1025), /^--agent is 1025 characters; at most 1024$/],
      [42, /^--agent must be a string, got number$/],
    ] as const) {
      assert.throws(
        () => queryLiteral(value, '--agent'),
        (err: any) => err.code === 'INVALID_INPUT' && message.test(err.message),
        String(value),
      );
    }
  });

  it('builds one query per list, scoped to the task queue', () => {
    assert.equal(
      sessionQuery('q', { state: 'active', agentDid: 'did:mesh:a' }),
      "WorkflowType = 'sessionWorkflow' AND TaskQueue = 'q' AND ExecutionStatus != 'ContinuedAsNew' AND HvSessionState = 'active' AND HvAgentDids = 'did:mesh:a'",
    );
    assert.equal(
      sagaQuery('q', { state: 'compensated', agentDid: 'did:mesh:a', sessionId: 's1' }),
      "WorkflowType = 'sagaWorkflow' AND TaskQueue = 'q' AND HvSagaState = 'compensated' AND HvAgentDids = 'did:mesh:a' AND HvSessionId = 's1'",
    );
    // Issue 20: a format-3 saga writes HvSagaState only when its status cannot say it.
    assert.equal(
      sagaQuery('q', { state: 'completed' }),
      "WorkflowType = 'sagaWorkflow' AND TaskQueue = 'q' AND (HvSagaState = 'completed' OR (HvSagaState IS NULL AND HvSessionId IS NOT NULL AND ExecutionStatus = 'Completed'))",
    );
    assert.equal(
      sagaQuery('q', { state: 'running' }),
      "WorkflowType = 'sagaWorkflow' AND TaskQueue = 'q' AND (HvSagaState = 'running' OR (HvSagaState IS NULL AND HvSessionId IS NOT NULL AND ExecutionStatus != 'Completed'))",
    );
    assert.equal(
      approvalQuery('q', { sessionId: 's1' }),
      "WorkflowType = 'sagaWorkflow' AND TaskQueue = 'q' AND ExecutionStatus = 'Running' AND HvWaitingSince IS NOT NULL AND HvSessionId = 's1'",
    );
    assert.throws(
      () => sessionQuery('q', { state: 'open' }),
      /state must be a session state \(created, handshaking, active, terminating, archived\), got "open"/,
    );
    assert.throws(
      () => sagaQuery('q', { state: 'active' }),
      /state must be a saga state \(running, completed, failed, compensating, compensated, escalated\)/,
    );
  });

  it("N16: reads a saga's id from its workflow id in either form, given its session's", () => {
    // The same old-form id for two sessions: its session's id tells them apart.
    assert.equal(sagaIdOf('hv-saga-a-b-c', 'a-b'), 'c');
    assert.equal(sagaIdOf('hv-saga-a-b-c', 'a'), 'b-c');
    assert.equal(sagaIdOf('hv-saga-a-b/c', 'a-b'), 'c');
    assert.equal(sagaIdOf('hv-saga-a/b-c', 'a'), 'b-c');
    assert.equal(sagaIdOf('hv-saga-x/c', 'a'), 'hv-saga-x/c', "another session's: left whole");
  });

  it('takes a limit from 1 to 1,000, 50 by default', () => {
    assert.equal(limitOf(undefined), 50);
    assert.equal(limitOf(1000), 1000);
    for (const bad of [0, 1001, 2.5, '5', NaN])
      assert.throws(() => limitOf(bad), /limit must be an integer from 1 to 1000/);
  });

  it('writes an entry per waiting step well under the 2,048-byte limit, and reads it back (total on anything else)', () => {
    const p = {
      stepId: 's'.repeat(200),
      digest: 'a'.repeat(64),
      waitFor: 'consensus',
      quorum: 100,
      sinceMs: 8.64e15,
      deadlineMs: 8.64e15,
    };
    const entry = pendingApprovalEntry(p);
    assert.ok(Buffer.byteLength(JSON.stringify([entry])) < 400, `${Buffer.byteLength(entry)} bytes`);
    assert.deepEqual(parsePendingApproval(entry), p);
    for (const bad of [
      null,
      3,
      '',
      'a|b',
      `s|${'a'.repeat(64)}|consensus|2|1|x`,
      `s|${'A'.repeat(64)}|consensus|2|1|2`,
      `|${'a'.repeat(64)}|consensus|2|1|2`,
      `s|${'a'.repeat(64)}|consensus|2|1|2|7`,
    ]) {
      assert.equal(parsePendingApproval(bad), null, String(bad));
    }
  });
});
