/**
 * The scenario the other-client tests share: a session with a trusted agent
 * (σ 0.85, ring 2) and a sandboxed one (σ 0.3, ring 3), both declaring the
 * actions; a saga whose second step is the sandboxed agent's write, which the
 * gate must deny, so the trusted agent's first step is compensated. A saga
 * started by another client must be governed exactly like one the TypeScript
 * client starts on the same session.
 */
import assert from 'node:assert/strict';
import type { SessionHandle } from '../../../src/client';
import type { SagaInputRaw } from '../../../src/contract';
import type { SagaSnapshot } from '../../../workflows/sagaTypes';
import { eventually, hypervisor } from '../../helpers/hv';
import { activeSession } from '../../helpers/sessions';
import { calls } from '../../helpers/testHandlers';

export const TRUSTED = 'did:mesh:trusted';
export const SANDBOXED = 'did:mesh:sandboxed';

export function sandboxSession(): Promise<SessionHandle> {
  return activeSession({ [TRUSTED]: 0.85, [SANDBOXED]: 0.3 });
}

/** The saga input as any client sends it (contract/sagaWorkflow.schema.json). */
export function sagaInput(sessionId: string, sagaId: string, client: string): SagaInputRaw & { sagaId: string } {
  return {
    sessionId,
    sagaId,
    description: `started from ${client}`,
    steps: [
      { actionId: 'draft', agentDid: TRUSTED, handler: 'test.step' },
      { actionId: 'publish', agentDid: SANDBOXED, handler: 'test.step' },
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
    steps: s.saga.steps.map(({ stepId, actionId, agentDid, state, attempts, error }) => ({ stepId, actionId, agentDid, state, attempts, error })),
  };
}

/** The session's audit entries about one saga, in order, with the saga's id made generic. */
async function auditOf(session: SessionHandle, sagaId: string): Promise<string[]> {
  const { trail } = await session.audit();
  return trail.deltas
    .flatMap((d) => d.changes.map((c) => ({ agentDid: d.agentDid, path: c.path, op: c.operation })))
    .filter((c) => c.path.startsWith(`/sagas/${sagaId}`))
    .map((c) => `${c.agentDid} ${c.op} ${c.path.replace(`/sagas/${sagaId}`, '/sagas/<saga>')}`);
}

/** Starts the same saga with the TypeScript client on the session and returns its governed outcome. */
export async function referenceOutcome(session: SessionHandle, sagaId: string) {
  const hv = await hypervisor();
  const saga = await hv.startSaga(sagaInput(session.sessionId, sagaId, 'TypeScript'));
  const result = await saga.result();
  await eventually(() => session.sagas(), (s) => s.some((g) => g.sagaId === sagaId && g.state === 'compensated'), 'the session to record the TypeScript saga');
  return { sagaId, governance: governance(result), audit: await auditOf(session, sagaId) };
}

/**
 * Asserts the saga another client started was governed like the reference:
 * the same outcome, the denied step never ran, the trusted step was undone,
 * the session lists the saga and audited it the same way.
 */
export async function assertGovernedLike(session: SessionHandle, sagaId: string, result: SagaSnapshot, reference: Awaited<ReturnType<typeof referenceOutcome>>): Promise<void> {
  assert.equal(result.saga.state, 'compensated');
  assert.equal(result.failedStepId, 'step-2');
  assert.match(result.error ?? '', /ring violation/);
  assert.deepEqual(result.compensationOrder, ['step-1']);
  assert.deepEqual(result.saga.steps.map((s) => [s.stepId, s.agentDid, s.state]), [
    ['step-1', TRUSTED, 'compensated'],
    ['step-2', SANDBOXED, 'failed'],
  ]);
  assert.match(result.saga.steps[1]!.error ?? '', /^RING_VIOLATION/);
  // The worker ran step 1 and its undo, and never the denied step 2.
  assert.deepEqual((calls[result.workflowId] ?? []).map((c) => `${c.stepId}/${c.phase}`), ['step-1/execute', 'step-1/undo']);

  const listed = await eventually(() => session.sagas(), (s) => s.some((g) => g.sagaId === sagaId && g.state === 'compensated'), `the session to list saga ${sagaId} as compensated`);
  assert.equal(listed.find((g) => g.sagaId === sagaId)!.workflowId, result.workflowId);

  assert.deepEqual(governance(result), reference.governance, 'governed exactly like the TypeScript-started saga');
  const audit = await auditOf(session, sagaId);
  assert.ok(audit.some((a) => a === `${SANDBOXED} modify /sagas/<saga>/steps/step-2/gate`), `the denial is audited: ${audit.join('; ')}`);
  assert.deepEqual(audit, reference.audit, 'audited exactly like the TypeScript-started saga');
}
