/**
 * What a step's result says it cost (SPEC §12 budgets), in a module of its own: a saga's outcome
 * (src/contract/sagaOutcome.ts) reads it, and every saga run builds the modules it loads afresh
 * (workflows/index.ts) — controls.ts would bring the controls config's schemas, which a saga never parses.
 */

/** The cost units a step's result reports (`costUnits`, a finite number ≥ 0), if any. */
export function reportedCost(result: unknown): number | undefined {
  if (typeof result !== 'object' || result === null) return undefined;
  const c = (result as { costUnits?: unknown }).costUnits;
  return typeof c === 'number' && Number.isFinite(c) && c >= 0 ? c : undefined;
}
