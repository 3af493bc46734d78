import type { SagaStepInput } from '../src/contract';

/** The saga's static details for the Web UI: its steps as a markdown table. */
export function sagaStaticDetails(steps: readonly (SagaStepInput & { digest?: string })[]): string {
  const rows = steps.map(
    (s, i) =>
      `| ${s.stepId ?? `step-${i + 1}`} | ${s.actionId} | ${s.agentDid} | ${s.digest ? `\`${s.digest.slice(0, 12)}…\`` : ''} |`,
  );
  return ['| step | action | agent | digest |', '|---|---|---|---|', ...rows].join('\n');
}
