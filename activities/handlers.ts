/**
 * Step handlers: what a saga step runs when it names a handler rather than an
 * HTTP tool. Handlers are registered with the worker by name, so a saga
 * started from any SDK can refer to them in plain JSON.
 */
import type { Context } from '@temporalio/activity';

export interface StepContext {
  /** Stable across retries and replays: `<workflowId>/<stepId>/<execute|undo>`. */
  idempotencyKey: string;
  /** The saga's workflow id (unique, unlike the saga id, which is unique per session). */
  workflowId: string;
  sessionId: string;
  sagaId: string;
  stepId: string;
  actionId: string;
  agentDid: string;
  attempt: number;
  /** The activity context, for heartbeats and cancellation. */
  activity: Context;
}

export interface StepHandler {
  execute(input: unknown, ctx: StepContext): Promise<unknown>;
  /** Absent: the step cannot be compensated (SPEC §6: compensation_failed, then escalation). */
  undo?(input: unknown, result: unknown, ctx: StepContext): Promise<unknown>;
  /**
   * True for a handler that only reads. Only such a handler may run for an
   * action declared read-only (ring 3): the declaration cannot lend a
   * sandboxed agent a handler with side effects (SPEC §11.4).
   */
  readOnly?: boolean;
}

/** Keyed by a Map: a step may name any string (`constructor`, `__proto__`, …) and must find nothing but a registered handler. */
const handlers = new Map<string, StepHandler>();

export function registerStepHandler(name: string, handler: StepHandler): void {
  handlers.set(name, handler);
}

export function stepHandler(name: string): StepHandler | undefined {
  return handlers.get(name);
}

export function stepHandlerNames(): string[] {
  return [...handlers.keys()].sort();
}
