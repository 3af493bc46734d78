/**
 * How the typed client's requests travel: the size bound, the per-session queue under Temporal's limit of
 * updates in flight, the retries of a refusal the caller did not cause (with the same request id), waiting out
 * RATE_LIMITED, and a Temporal failure turned back into the rule's HypervisorError.
 */
import {
  QueryNotRegisteredError,
  QueryRejectedError,
  WorkflowFailedError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
} from '@temporalio/client';
import { randomBytes } from 'node:crypto';
import { ApplicationFailure, WorkflowNotFoundError } from '@temporalio/common';
import { ERROR_CODES, HypervisorError, isHypervisorError, type ErrorCode } from '../core/errors';
import { jsonSize } from '../contract';
import type { SagaSnapshot } from '../contract/sagaTypes';
import { isCompactOutcome, type SagaAnswer } from '../contract/sagaOutcome';

/**
 * The largest request this client sends. Valid requests are far smaller (the
 * contract bounds every list and string); a larger one would come back from the
 * server as an opaque failure of the workflow task (TEMPORAL-NOTES: Messages).
 */
export const MAX_REQUEST_BYTES = 1024 * 1024;

/** Refuse an oversized request before sending it, naming what was too large. */
export function checkRequestSize(what: string, value: unknown): void {
  const size = jsonSize(value);
  if (size > MAX_REQUEST_BYTES) {
    throw new HypervisorError(
      'PAYLOAD_TOO_LARGE',
      `${what} is ${size} bytes of JSON; requests are at most ${MAX_REQUEST_BYTES} bytes (see the field limits in contract/)`,
      { size, max: MAX_REQUEST_BYTES },
    );
  }
}

/**
 * A new request id (its Temporal update id): 128 random bits in base64url, 22 characters. History writes an
 * update's id four times (its accepted event, thrice; its completed event) and the session remembers the last
 * 128 across continue-as-new, so a UUID's 36 characters cost ~60 bytes more per update for 6 fewer bits.
 */
export const newRequestId = (): string => randomBytes(16).toString('base64url');

/**
 * Temporal admits at most 10 updates in flight per workflow run and refuses the
 * 11th (RESOURCE_EXHAUSTED). A session is one workflow that every agent talks
 * to, so this client queues its own updates per session below that limit — a
 * burst waits its turn instead of being refused — and retries a refusal caused
 * by other clients, or an update aborted when the session continued as new.
 */
export const UPDATES_IN_FLIGHT_PER_SESSION = 8;
const UPDATE_RETRY_BUDGET_MS = 120_000;

export class Gate {
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(
    private readonly limit: number,
    private readonly onIdle: () => void,
  ) {}
  async run<T>(work: () => Promise<T>): Promise<T> {
    // A finishing update hands its seat straight to the next in line.
    if (this.running >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.running++;
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else if (--this.running === 0) this.onIdle();
    }
  }
}

/**
 * A refusal the caller did not cause: the workflow's update limit, a session handing over to its next run, an
 * update aborted by continue-as-new, the server refusing updates while the session's workflow task is failing
 * (gRPC 9, "Workflow Task in failed state": a continue-as-new that new events keep interrupting, under load —
 * the server's own guard; it ends when a task completes) — or no answer at all: the server unavailable (gRPC 14)
 * or the call out of time (gRPC 4, or the SDK's wait for the update's outcome). Sent again with the same request
 * id, a request the session applied meanwhile gets its first answer (N25), so retrying any of them is safe; the
 * retries stop at UPDATE_RETRY_BUDGET_MS, so a session whose task keeps failing is reported, not waited on.
 */
export function isTransientUpdateRefusal(err: unknown): boolean {
  for (
    let e = err as { message?: string; cause?: unknown; code?: number } | undefined, depth = 0;
    e && depth < 5;
    e = e.cause as typeof e, depth++
  ) {
    if (
      (e as unknown) instanceof ApplicationFailure &&
      (e as unknown as ApplicationFailure).type === 'SESSION_CONTINUING'
    )
      return true;
    if ((e as unknown) instanceof WorkflowUpdateRPCTimeoutOrCancelledError) return true;
    if (e.code === 8 || e.code === 14 || e.code === 4) return true;
    if (
      /RESOURCE_EXHAUSTED|UNAVAILABLE|DEADLINE_EXCEEDED|in-flight updates|update aborted|workflow update was aborted|unexpected workflow task failure|Workflow Task in failed state/i.test(
        e.message ?? '',
      )
    )
      return true;
  }
  return false;
}

export async function withUpdateRetries<T>(call: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + UPDATE_RETRY_BUDGET_MS;
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (!isTransientUpdateRefusal(err) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, Math.min(2000, 50 * 2 ** attempt) * (0.5 + Math.random())));
    }
  }
}

/** Failure types a saga ends with when it did not complete; its answer (compact outcome or snapshot) is in the details. */
export const SAGA_FAILURE_TYPES = ['SagaCompensated', 'SagaEscalated', 'SagaFailed'];

/** What a saga that ended as a failed workflow answered (its compact outcome; an older saga's snapshot), or undefined. */
export function sagaAnswerOf(err: unknown): SagaAnswer | undefined {
  const cause = err instanceof WorkflowFailedError ? err.cause : undefined;
  if (cause instanceof ApplicationFailure && SAGA_FAILURE_TYPES.includes(cause.type ?? '') && cause.details?.[0]) {
    return cause.details[0] as SagaAnswer;
  }
  return undefined;
}

/**
 * The snapshot a saga that ended as a failed workflow carried in its details: only an older saga's (a saga
 * now carries its compact outcome — `sagaAnswerOf`; its snapshot is `SagaHandle.result()`, by query).
 */
export function sagaSnapshotOf(err: unknown): SagaSnapshot | undefined {
  const answer = sagaAnswerOf(err);
  return answer && !isCompactOutcome(answer) ? (answer as SagaSnapshot) : undefined;
}

export const DEFAULT_TASK_QUEUE = 'agent-hypervisor';

/** Turn a Temporal failure carrying a rule's code into a HypervisorError; anything else passes through. */
export function toHypervisorError(err: unknown, sessionId?: string): unknown {
  // An update to an ended session comes back as WorkflowNotFoundError too: it exists, it has ended.
  if (err instanceof Error && /workflow execution already completed/i.test(err.message) && sessionId) {
    return new HypervisorError('SESSION_CLOSED', `session ${sessionId} has ended; it takes no more requests`, {
      state: 'archived',
    });
  }
  if (err instanceof WorkflowNotFoundError) {
    return new HypervisorError('SESSION_NOT_FOUND', sessionId ? `session ${sessionId} does not exist` : err.message);
  }
  // A refused query: its message leads with the rule's code (workflows/failures.ts: queryAnswer).
  if (err instanceof QueryNotRegisteredError || err instanceof QueryRejectedError) {
    const m = /^(?:\d+ [A-Z_]+: )?([A-Z_]+): ([\s\S]*)$/.exec(err.message);
    if (m && ERROR_CODES.includes(m[1] as ErrorCode)) return new HypervisorError(m[1] as ErrorCode, m[2]!);
  }
  const cause = err instanceof WorkflowUpdateFailedError || err instanceof WorkflowFailedError ? err.cause : err;
  if (cause instanceof ApplicationFailure && ERROR_CODES.includes(cause.type as ErrorCode)) {
    return new HypervisorError(
      cause.type as ErrorCode,
      cause.message,
      (cause.details?.[0] as Record<string, unknown>) ?? {},
    );
  }
  return err;
}

export async function mapped<T>(call: () => Promise<T>, sessionId?: string): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw toHypervisorError(err, sessionId);
  }
}

/** A step named by saga and step id; the digest is looked up from the saga when not given. */
export interface StepEvidenceRequest {
  sagaId: string;
  stepId: string;
  digest?: string;
}

/** How one request is sent: who signs what names no DID, and its request id (default: a new UUID). */
export interface SendOptions {
  as?: string;
  /** The request's id: its Temporal update id, the same on every retry; a resend of an applied request gets the first answer. */
  requestId?: string;
  /**
   * Fail at once on RATE_LIMITED. By default a refusal that says when the agent's next token is free is waited
   * out (jittered) and sent again as a new request, within RATE_LIMIT_WAIT_MS in all — never with a fixed
   * `requestId`, whose resend would get the first answer, the refusal.
   */
  failFast?: boolean;
}

/** How long send() waits out RATE_LIMITED refusals, in all, before it gives the refusal to the caller. */
export const RATE_LIMIT_WAIT_MS = 10_000;

/** SPEC §12: an agent over its ring's rate is refused with the time its next token is free; wait that long and send again. */
export async function honouringRateLimits<T>(opts: SendOptions | undefined, send: () => Promise<T>): Promise<T> {
  const until = Date.now() + RATE_LIMIT_WAIT_MS;
  for (;;) {
    try {
      return await send();
    } catch (err) {
      const after = isHypervisorError(err, 'RATE_LIMITED') ? err.details.retryAfterMs : undefined;
      if (typeof after !== 'number' || opts?.failFast || opts?.requestId !== undefined) throw err;
      const wait = after * (1 + 0.2 * Math.random()) + 1;
      if (Date.now() + wait > until) throw err;
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}
