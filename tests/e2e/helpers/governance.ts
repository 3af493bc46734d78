/**
 * The scenario the other-client tests share: a session with a trusted agent
 * (σ 0.85, ring 2) and a sandboxed one (σ 0.3, ring 3), both declaring the
 * actions (and what runs them) at join; a saga whose second step is the
 * sandboxed agent's write, which the gate must deny, so the trusted agent's
 * first step is compensated. Every client starts a saga the same way — the
 * session's `startSaga` update — and a saga started by another client must be
 * governed exactly like one the TypeScript client starts on the same session.
 */
import assert from 'node:assert/strict';
import type { SessionHandle } from '../../../src/client';
import type { SagaWorkflowInput, StartSagaRequest } from '../../../src/contract';
import type { SagaSnapshot } from '../../../src/contract/sagaTypes';
import { eventually } from '../../helpers/hv';
import { activeSession } from '../../helpers/sessions';
import { calls } from '../../helpers/testHandlers';

export const TRUSTED = 'did:mesh:trusted';
export const SANDBOXED = 'did:mesh:sandboxed';

/** The author of the deltas no agent caused: the session records a saga's start and outcome itself. */
const HYPERVISOR = 'did:hv:hypervisor';

export function sandboxSession(): Promise<SessionHandle> {
  return activeSession({ [TRUSTED]: 0.85, [SANDBOXED]: 0.3 });
}

/**
 * The startSaga request as any client sends it (contract/startSaga.schema.json):
 * steps name only the action, the agent and the input; what runs is what the
 * agent declared for the action at join.
 */
export function sagaRequest(sagaId: string, client: string): StartSagaRequest & { sagaId: string } {
  return {
    sagaId,
    description: `started from ${client}`,
    steps: [
      { actionId: 'draft', agentDid: TRUSTED },
      { actionId: 'publish', agentDid: SANDBOXED },
    ],
  };
}

/** What governance decided, without times and ids. */
export function governance(s: SagaSnapshot) {
  return {
    state: s.saga.state,
    failedStepId: s.failedStepId,
    error: s.error,
    compensationOrder: s.compensationOrder,
    steps: s.saga.steps.map(({ stepId, actionId, agentDid, state, attempts, error, executeApi, undoApi }) => ({
      stepId,
      actionId,
      agentDid,
      state,
      attempts,
      error,
      executeApi,
      undoApi,
    })),
  };
}

/** The session's audit entries about one saga, in order, with the saga's id made generic. */
async function auditOf(session: SessionHandle, sagaId: string): Promise<string[]> {
  const { trail } = await session.audit();
  return trail.deltas
    .flatMap((d) => d.changes.map((c) => ({ agentDid: d.agentDid, path: c.path, op: c.operation })))
    .filter((c) => c.path === `/sagas/${sagaId}` || c.path.startsWith(`/sagas/${sagaId}/`))
    .map((c) => `${c.agentDid} ${c.op} ${c.path.replace(`/sagas/${sagaId}`, '/sagas/<saga>')}`);
}

/** Waits until the session has recorded the saga's outcome (it learns it from the child's completion). */
function recorded(session: SessionHandle, sagaId: string, state = 'compensated') {
  return eventually(
    () => session.sagas(),
    (s) => s.some((g) => g.sagaId === sagaId && g.state === state),
    `the session to record saga ${sagaId} as ${state}`,
  );
}

/** Starts the same saga with the TypeScript client on the session and returns its governed outcome. */
export async function referenceOutcome(session: SessionHandle, sagaId: string) {
  const saga = await session.startSaga(sagaRequest(sagaId, 'TypeScript'));
  const result = await saga.result();
  await recorded(session, sagaId);
  return {
    sagaId,
    workflowId: saga.handle.workflowId,
    digests: saga.digests,
    governance: governance(result),
    audit: await auditOf(session, sagaId),
  };
}

/**
 * Asserts the saga another client started was governed like the reference:
 * the same outcome, the denied step never ran, the trusted step was undone,
 * the session lists the saga and audited it the same way.
 */
export async function assertGovernedLike(
  session: SessionHandle,
  sagaId: string,
  result: SagaSnapshot,
  reference: Awaited<ReturnType<typeof referenceOutcome>>,
): Promise<void> {
  assert.equal(result.sessionId, session.sessionId);
  assert.equal(result.saga.sagaId, sagaId);
  assert.equal(result.saga.state, 'compensated');
  assert.equal(result.failedStepId, 'step-2');
  assert.match(result.error ?? '', /ring violation/);
  assert.deepEqual(result.compensationOrder, ['step-1']);
  assert.deepEqual(
    result.saga.steps.map((s) => [s.stepId, s.agentDid, s.state]),
    [
      ['step-1', TRUSTED, 'compensated'],
      ['step-2', SANDBOXED, 'failed'],
    ],
  );
  assert.match(result.saga.steps[1]!.error ?? '', /^RING_VIOLATION/);
  // What ran is what the agents declared at join, not anything the client sent.
  assert.deepEqual(
    result.saga.steps.map((s) => s.executeApi),
    ['handler:test.step', 'handler:test.step'],
  );
  // The worker ran step 1 and its undo, and never the denied step 2.
  assert.deepEqual(
    (calls[result.workflowId] ?? []).map((c) => `${c.stepId}/${c.phase}`),
    ['step-1/execute', 'step-1/undo'],
  );
  // The step digests are bound to the session, the saga and the step, so they differ from the reference's.
  assert.deepEqual(Object.keys(result.digests).sort(), Object.keys(reference.digests).sort());
  for (const [stepId, digest] of Object.entries(result.digests)) assert.notEqual(digest, reference.digests[stepId]);

  const listed = await recorded(session, sagaId);
  assert.equal(listed.find((g) => g.sagaId === sagaId)!.workflowId, result.workflowId);

  assert.deepEqual(governance(result), reference.governance, 'governed exactly like the TypeScript-started saga');
  const audit = await auditOf(session, sagaId);
  for (const entry of [
    `${HYPERVISOR} add /sagas/<saga>`,
    `${HYPERVISOR} modify /sagas/<saga>/state`,
    `${HYPERVISOR} modify /sagas/<saga>/steps/step-2`,
  ]) {
    assert.ok(audit.includes(entry), `the session audited "${entry}": ${audit.join('; ')}`);
  }
  assert.deepEqual(audit, reference.audit, 'audited exactly like the TypeScript-started saga');
}

/**
 * A sagaWorkflow input as a client could forge it: well-formed by the contract,
 * claiming a view in which the sandboxed agent is fully trusted. The saga must
 * refuse to run it because its session did not start it, whatever it claims.
 */
export function forgedSagaInput(sessionId: string, sagaId: string): SagaWorkflowInput {
  const api = { executeApi: 'handler:test.step', undoApi: 'handler:test.step' };
  return {
    sessionId,
    sagaId,
    description: 'started directly, not by the session',
    steps: [{ stepId: 'step-1', actionId: 'publish', agentDid: SANDBOXED, digest: 'f'.repeat(64) }],
    agents: [{ did: SANDBOXED, sigmaRaw: 1, bondSum: 0, ringCap: 0, active: true }],
    actions: [{ actionId: 'publish', readOnly: false, admin: false, reversibility: 'FULL', omega: 0.1, ...api }],
    quorum: 1,
  };
}

/**
 * Asserts a directly started sagaWorkflow failed at once, saying how a saga is
 * started; nothing of it ran and its session neither lists nor audits it.
 */
export async function assertRefusedDirectStart(
  session: SessionHandle,
  sagaId: string,
  workflowId: string,
  failure: { type: string | null; message: string | null },
): Promise<void> {
  assert.equal(failure.type, 'SAGA_NOT_STARTED_BY_SESSION');
  assert.match(failure.message ?? '', /runs only as a child of its session/);
  assert.ok(
    (failure.message ?? '').includes(
      `temporal workflow update execute -w hv-session-${session.sessionId} --name startSaga --input`,
    ),
    `the failure says how to start a saga: ${failure.message}`,
  );
  assert.equal(calls[workflowId], undefined, 'no step of the forged saga ran');
  assert.ok(!(await session.sagas()).some((g) => g.sagaId === sagaId), 'the session does not list the forged saga');
  assert.deepEqual(await auditOf(session, sagaId), [], 'the session audited nothing of the forged saga');
}
