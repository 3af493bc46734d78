import type { SagaStepInput } from '../src/contract';

/** The saga's static details for the Web UI: its steps as a markdown table. */
export function sagaStaticDetails(steps: readonly SagaStepInput[]): string {
  const rows = steps.map((s, i) => `| ${s.stepId ?? `step-${i + 1}`} | ${s.actionId} | ${s.agentDid} | ${s.handler ?? s.executeApi ?? ''} |`);
  return ['| step | action | agent | runs |', '|---|---|---|---|', ...rows].join('\n');
}
