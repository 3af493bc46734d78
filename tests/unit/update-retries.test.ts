import assert from 'node:assert/strict';
import { ApplicationFailure } from '@temporalio/common';
import { ServiceError } from '@temporalio/client';
import { isTransientUpdateRefusal, withUpdateRetries } from '../../src/client/transport';

/** An RPC failure as the client SDK throws it: a ServiceError whose cause is the gRPC error. */
const rpcFailure = (code: number, message: string) =>
  new ServiceError('Failed to perform the update', { cause: Object.assign(new Error(message), { code }) });

// What the cluster answered while a session's continue-as-new kept being interrupted by new events (issue 20's
// long-lived session bench): the server's guard against a workflow whose task is failing.
const TASK_FAILING = rpcFailure(
  9,
  '9 FAILED_PRECONDITION: Unable to perform workflow execution update due to Workflow Task in failed state.',
);

describe('the typed client: which update refusals it sends again (issue 20)', () => {
  it('sends again what the caller did not cause: a session handing over, the update limit, a failing workflow task, no answer', () => {
    assert.equal(isTransientUpdateRefusal(TASK_FAILING), true);
    assert.equal(isTransientUpdateRefusal(ApplicationFailure.create({ type: 'SESSION_CONTINUING' })), true);
    assert.equal(isTransientUpdateRefusal(rpcFailure(8, '8 RESOURCE_EXHAUSTED: too many in-flight updates')), true);
    assert.equal(isTransientUpdateRefusal(rpcFailure(14, '14 UNAVAILABLE: connection refused')), true);
  });

  it('gives the caller what it caused: a rule refusal, or another failed precondition', () => {
    assert.equal(isTransientUpdateRefusal(ApplicationFailure.create({ type: 'GATE_DENIED' })), false);
    assert.equal(isTransientUpdateRefusal(ApplicationFailure.create({ type: 'RATE_LIMITED' })), false);
    assert.equal(
      isTransientUpdateRefusal(rpcFailure(9, '9 FAILED_PRECONDITION: workflow execution already completed')),
      false,
    );
  });

  it('waits out a failing workflow task and answers once the session takes the update', async () => {
    let calls = 0;
    const answer = await withUpdateRetries(async () => {
      if (++calls < 3) throw TASK_FAILING;
      return 'applied';
    });
    assert.equal(answer, 'applied');
    assert.equal(calls, 3);
  });

  it('does not send again a refusal the caller caused', async () => {
    let calls = 0;
    await assert.rejects(
      withUpdateRetries(async () => {
        calls++;
        throw ApplicationFailure.create({ type: 'GATE_DENIED' });
      }),
      (err: ApplicationFailure) => err.type === 'GATE_DENIED',
    );
    assert.equal(calls, 1);
  });
});
