import { ApplicationFailure, inWorkflowContext, log } from '@temporalio/workflow';
import { HypervisorError } from '../src/core/errors';

/**
 * Runs a governance rule and turns its rejection into a non-retryable
 * ApplicationFailure whose type is the rule's error code. Any other error is
 * a bug: it is rethrown as is, so it fails the workflow task (and is retried
 * once the code is fixed) instead of failing the session.
 */
export function governed<T>(rule: () => T): T {
  try {
    return rule();
  } catch (err) {
    throw asFailure(err);
  }
}

export function asFailure(err: unknown): unknown {
  if (err instanceof HypervisorError) {
    return ApplicationFailure.create({
      message: err.message,
      type: err.code,
      nonRetryable: true,
      details: [err.details],
    });
  }
  return err;
}

/**
 * A query's refusal. Temporal hands clients only a failed query's message (the
 * TypeScript client even calls it QueryNotRegisteredError), so the rule's code
 * leads the message — `FILE_NOT_FOUND: no file at …` — for any SDK to read.
 */
export function queryAnswer<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
  return (...args: A) => {
    try {
      return fn(...args);
    } catch (err) {
      const cause =
        err instanceof HypervisorError
          ? err
          : err instanceof ApplicationFailure && err.type
            ? { code: err.type, message: err.message }
            : undefined;
      if (cause) throw new Error(`${cause.code}: ${cause.message}`);
      throw err;
    }
  };
}

/**
 * What a best-effort call that may fail does with its failure: it is logged,
 * never silently dropped (a dropped push or escalation should be visible),
 * and the workflow goes on. Outside the workflow context (an evicted run) it
 * only drops.
 */
export function logDropped(what: string): (err: unknown) => void {
  return (err: unknown) => {
    if (inWorkflowContext()) log.warn(`dropped: ${what}`, { error: (err as Error)?.message ?? String(err) });
  };
}
