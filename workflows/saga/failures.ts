/**
 * How a saga's failures are read and reported: what a step's failure says
 * (may it have acted? did the re-gate refuse it?), a start that did not come
 * from the session, and how a saga that did not complete ends (a failed
 * workflow of type SagaCompensated / SagaEscalated / SagaFailed with its
 * answer in the details, so the Web UI and Temporal's metrics tell it apart).
 */
import * as wf from '@temporalio/workflow';
import type { SagaAnswer } from '../../src/contract/sagaOutcome';
import type { SagaStatus } from '../../src/core/saga';
import { isToolDefinitionChange, type ToolDefinitionChange } from '../../src/core/toolDefinitions';
import { STEP_NOT_APPENDED } from '../../src/core/sagaContract';
import { sessionWorkflowId } from '../definitions';

export function describeFailure(err: unknown): string {
  if (err instanceof wf.ActivityFailure && err.cause) return describeFailure(err.cause);
  if (err instanceof wf.TimeoutFailure)
    return `timed out (${String(err.timeoutType).toLowerCase().replace(/_/g, '-')})`;
  if (err instanceof wf.CancelledFailure) return 'cancelled';
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * The step may have acted (SPEC §6 [resolved]): it timed out, its worker was
 * lost or it was cancelled while running — or the step activity says so (an
 * earlier attempt, a request without an answer): see StepFailureDetails.
 */
export function outcomeUnknown(err: unknown): boolean {
  const cause = err instanceof wf.ActivityFailure ? err.cause : err;
  if (cause instanceof wf.TimeoutFailure || cause instanceof wf.CancelledFailure) return true;
  const details =
    cause instanceof wf.ApplicationFailure ? (cause.details?.[0] as { mayHaveActed?: unknown } | undefined) : undefined;
  return details?.mayHaveActed === true;
}

/** Issue 21: the step was refused because its MCP tool's definition changed — which tool, both hashes (the step activity's details). */
export function toolDefinitionChanged(err: unknown): ToolDefinitionChange | null {
  const cause = err instanceof wf.ActivityFailure ? err.cause : undefined;
  if (!(cause instanceof wf.ApplicationFailure) || cause.type !== 'ToolDefinitionChanged') return null;
  const d = (cause.details?.[0] as { toolDefinition?: unknown } | undefined)?.toolDefinition;
  return isToolDefinitionChange(d) ? { tool: d.tool, pinned: d.pinned, current: d.current } : null;
}

export function gateDeniedBy(err: unknown): string | null {
  const cause = err instanceof wf.ActivityFailure ? err.cause : undefined;
  return cause instanceof wf.ApplicationFailure && cause.type === 'GateDenied' ? cause.message : null;
}

/** A turn's direct step its session does not hold as appended (docs/TURNS.md): refused before it acted. */
export function notAppended(err: unknown): boolean {
  const cause = err instanceof wf.ActivityFailure ? err.cause : undefined;
  return cause instanceof wf.ApplicationFailure && cause.type === STEP_NOT_APPENDED;
}

/** How a saga refuses to run when a client started it directly: it says how to start one. */
export function notFromSession(raw: unknown): never {
  const sessionId =
    typeof raw === 'object' && raw !== null && typeof (raw as { sessionId?: unknown }).sessionId === 'string'
      ? (raw as { sessionId: string }).sessionId
      : '<sessionId>';
  throw wf.ApplicationFailure.nonRetryable(
    `a saga runs only as a child of its session, which gates it: start it with the session's startSaga update, e.g. ` +
      `temporal workflow update execute -w ${sessionWorkflowId(sessionId)} --name startSaga --input '{"steps":[…]}'`,
    'SAGA_NOT_STARTED_BY_SESSION',
  );
}

/** A saga that ended other than completed: the failure it ends its workflow with, its answer in the details. */
export function sagaFailure(
  sagaId: string,
  state: SagaStatus,
  answer: SagaAnswer,
  error: string | null,
): wf.ApplicationFailure {
  const type = state === 'compensated' ? 'SagaCompensated' : state === 'escalated' ? 'SagaEscalated' : 'SagaFailed';
  return wf.ApplicationFailure.create({
    type,
    message: `saga ${sagaId} ${state}: ${error ?? 'a step failed'}`,
    nonRetryable: true,
    details: [answer],
  });
}
