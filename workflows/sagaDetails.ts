import type { SagaStepInput } from '../src/contract';

/**
 * The saga's static details for the Web UI: its steps as a markdown table. Written twice to history (the
 * session's child start and the saga's own start), so only what names a step: its digest is in the session's
 * record, the startSaga answer and the saga's current details.
 */
export function sagaStaticDetails(steps: readonly SagaStepInput[]): string {
  const rows = steps.map((s, i) => `| ${s.stepId ?? `step-${i + 1}`} | ${s.actionId} | ${s.agentDid} |`);
  return ['| step | action | agent |', '|---|---|---|', ...rows].join('\n');
}
