/**
 * Request ids (issue 24, N25): a resend of a request the session already
 * applied returns the first answer, and acts no more.
 *
 * A request's id is its Temporal update id. Within one run Temporal itself
 * dedupes by it: an update sent again with the id of one it accepted gets that
 * update's outcome. A session continues as new, though, and the next run's
 * server-side registry is empty: so the session remembers the last
 * REQUESTS_KEPT requests it accepted — id, name, the hash of the argument
 * (without its signatures), and the essentials of the answer — and carries
 * them across continue-as-new. A request with a remembered id:
 *  - the same name and argument: the first answer, from the record, with no
 *    check and no effect (its signatures' nonces are spent, or it is signed
 *    again by a new process: a resend grants nothing, it only learns what the
 *    first did — which the session's queries tell any client anyway);
 *  - anything else: refused REQUEST_ID_REUSED (an id names one request).
 *
 * Bounded (SPEC §11.6): at most REQUESTS_KEPT records; ids longer than
 * REQUEST_ID_MAX are not remembered (Temporal's in-run dedupe still holds);
 * an answer is kept when its JSON is at most ANSWER_KEPT_BYTES (a saga start's
 * essentials are its ids: the digests are re-derived from the request), else
 * a resend learns only that it was applied (REQUEST_ALREADY_APPLIED).
 */
import * as wf from '@temporalio/workflow';
import { HypervisorError } from '../../src/core/errors';
import { canonicalJson, sha256Hex } from '../../src/core/hash';
import { flattenEntries, jsonSize } from '../../src/core/sagaContract';
import { StartSagaRequestSchema, type StartSagaRequestParsed } from '../../src/contract';
import { parse } from '../../src/core/common';
import type { UpdateName } from '../../src/contract/messages';
import type { RequestRecord } from '../../src/contract/sessionTypes';
import { stepDigest, type SessionContext } from './context';
import { patched } from '../ownRun';

export const REQUESTS_KEPT = 128;
export const REQUEST_ID_MAX = 200;
export const ANSWER_KEPT_BYTES = 512;
/** The patch under which the session remembers requests (histories before it remember none). */
export const REQUEST_IDS_PATCH = 'request-ids';

/** The id of the update being validated or handled now (its Temporal update id). */
export function currentRequestId(): string | undefined {
  const id = wf.currentUpdateInfo()?.id;
  return id !== undefined && id.length > 0 && id.length <= REQUEST_ID_MAX ? id : undefined;
}

/**
 * What makes two requests the same: the name and the argument without its signatures (a request sent
 * again by a new process is signed again, with new nonces; a resend acts no more, so it needs no authority).
 */
function hashOf(name: UpdateName, raw: unknown): string {
  const request =
    typeof raw === 'object' && raw !== null && !Array.isArray(raw)
      ? Object.fromEntries(Object.entries(raw).filter(([k]) => k !== 'auth'))
      : raw;
  return sha256Hex(canonicalJson({ name, request: request ?? null }));
}

/**
 * The record of an earlier request with this id, if the session remembers one; throws
 * REQUEST_ID_REUSED when the id named another request. Pure: validators call it.
 */
export function earlierRequest(
  ctx: SessionContext,
  id: string | undefined,
  name: UpdateName,
  raw: unknown,
): RequestRecord | undefined {
  if (id === undefined) return undefined;
  const r = ctx.requests.get(id);
  if (!r) return undefined;
  if (r.name !== name || r.hash !== hashOf(name, raw)) {
    throw new HypervisorError(
      'REQUEST_ID_REUSED',
      `request id ${id} already named another request to session ${ctx.sessionId} (${r.name}); a request id names one request: send a new request with a new id`,
      { requestId: id, name: r.name },
    );
  }
  return r;
}

/** The first answer to a request sent again: as it was, or re-derived from the request's essentials. */
export function firstAnswer(ctx: SessionContext, r: RequestRecord, raw: unknown): unknown {
  if (r.error)
    throw wf.ApplicationFailure.nonRetryable(
      r.error.message,
      r.error.type,
      ...(r.error.details ? [r.error.details] : []),
    );
  if (r.name === 'startSaga' && r.answer && typeof r.answer === 'object') {
    const { sagaId, workflowId, runId } = r.answer as { sagaId: string; workflowId: string; runId: string };
    const req = parse(StartSagaRequestSchema, raw, 'startSaga') as StartSagaRequestParsed;
    const digests = Object.fromEntries(
      flattenEntries(req.steps).steps.map((s) => {
        const stepId = s.stepId;
        return [
          stepId,
          stepDigest({
            sessionId: ctx.sessionId,
            sagaId,
            stepId,
            actionId: s.actionId,
            agentDid: s.agentDid,
            input: s.input,
          }),
        ];
      }),
    );
    return { sagaId, workflowId, runId, digests };
  }
  if (!r.kept) {
    throw new HypervisorError(
      'REQUEST_ALREADY_APPLIED',
      `request ${r.id} (${r.name}) was applied by session ${ctx.sessionId} already; its answer was too large to keep: read the session for its effect`,
      { requestId: r.id, name: r.name },
    );
  }
  return r.answer;
}

/** Remembers an accepted request and how it ended (behind the patch: histories before it remember nothing). */
export function rememberRequest(
  ctx: SessionContext,
  id: string | undefined,
  name: UpdateName,
  raw: unknown,
  outcome: { answer: unknown } | { error: wf.ApplicationFailure },
): void {
  if (id === undefined || !patched(REQUEST_IDS_PATCH)) return;
  const record: RequestRecord = { id, name, hash: hashOf(name, raw), kept: false };
  if ('error' in outcome) {
    const details = outcome.error.details?.[0];
    record.error = {
      type: outcome.error.type ?? 'INTERNAL',
      message: outcome.error.message.slice(0, 500),
      ...(details !== undefined && jsonSize(details) <= ANSWER_KEPT_BYTES ? { details } : {}),
    };
  } else if (name === 'startSaga') {
    const { sagaId, workflowId, runId } = outcome.answer as { sagaId: string; workflowId: string; runId: string };
    record.answer = { sagaId, workflowId, runId };
    record.kept = true;
  } else if (outcome.answer === undefined || jsonSize(outcome.answer) <= ANSWER_KEPT_BYTES) {
    record.answer = outcome.answer;
    record.kept = true;
  }
  ctx.requests.delete(id);
  ctx.requests.set(id, record);
  for (const old of ctx.requests.keys()) {
    if (ctx.requests.size <= REQUESTS_KEPT) break;
    ctx.requests.delete(old);
  }
}
