/**
 * A fork's steps (SPEC §14): the original saga's steps from `fromStepId` on, as the original started them —
 * read from its history's start input (what its session gave it). The session checks each against the
 * digest it holds for the original, so what is read here can only be the original's. Either format of the
 * start input (src/core/sagaStart.ts) serves: its steps are requests, with or without their defaults (format
 * 3's left-out step ids put back as the saga does).
 */
import type { WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { HypervisorError } from '../core/errors';
import type { SagaStepInput } from '../contract';
import { stepIdsOf } from '../core/sagaStart';
import type { SagaGroup } from '../core/sagaContract';

export async function stepsToFork(
  original: WorkflowHandle,
  sagaId: string,
  fromStepId: string,
): Promise<SagaStepInput[]> {
  const history = await original.fetchHistory();
  const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
  const payload = started?.input?.payloads?.[0];
  const input = payload
    ? (defaultPayloadConverter.fromPayload(payload as never) as { steps?: unknown; groups?: unknown })
    : undefined;
  const given = Array.isArray(input?.steps)
    ? (input.steps as (SagaStepInput & { digest?: string; leased?: boolean })[])
    : [];
  const ids = stepIdsOf(given, Array.isArray(input?.groups) ? (input.groups as SagaGroup[]) : []);
  const steps = given.map((s, i) => ({ ...s, stepId: ids[i] }));
  const from = steps.findIndex((s) => s.stepId === fromStepId);
  if (from < 0)
    throw new HypervisorError('NOT_FORKABLE', `cannot fork saga ${sagaId}: it has no step ${fromStepId}`, { sagaId });
  return steps.slice(from).map(({ digest: _d, leased: _l, ...step }) => step);
}
