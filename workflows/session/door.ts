/**
 * The door: the one place every request to the session passes (SPEC §11).
 *
 * For each update, in this order:
 *   1. validator — the session is not handing over; the audit backlog has room;
 *      the request parses by its registry schema; every DID the registry's
 *      signer rule names has signed it (did:key sessions); the family's
 *      `check`, which needs no waiting. A refusal here leaves no history.
 *   2. handler — counted towards the run's updates; waits until the trail is
 *      settled with the store; parses the request again by the same schema (a
 *      replay runs no validator); then the family's `run`, which checks again
 *      (state may have moved since the validator), accepts the signatures
 *      (`arrival.accept()`: checked again, their nonces taken) and records.
 *      Any error fails only the update.
 *
 * A request the session already applied (its update id remembered, requests.ts)
 * passes the validator after the hand-over check alone, and its handler returns
 * the first answer: a resend acts no more (N25).
 *
 * The schema, the signer rule and the description come from the message
 * registry (src/contract/messages.ts): a message is declared once.
 */
import type { UpdateDefinition } from '@temporalio/common';
import type { z } from 'zod';
import * as wf from '@temporalio/workflow';
import { parse } from '../../src/core/common';
import { HypervisorError } from '../../src/core/errors';
import { acceptNonces, checkAuth, type DeltaSignature, type Signers } from '../../src/core/identity';
import { MESSAGES, signedInEveryMode, type SignerContext, type UpdateName } from '../../src/contract/messages';
import { definitions } from '../definitions';
import { asFailure, governed } from '../failures';
import { bondOf, controllers, type SessionContext } from './context';
import { requireAuditCapacity } from './trail';
import { currentRequestId, earlierRequest, firstAnswer, rememberRequest } from './requests';
import { patched } from '../ownRun';

/** A request as the door hands it to its family: parsed by the registry's schema, without its signatures. */
export type Request<N extends UpdateName> = Omit<NonNullable<z.output<(typeof MESSAGES)[N]['input']>>, 'auth'>;

/** What a handler gets with the request: the message's name, the argument as sent, and its signatures. */
export interface Arrival<N extends UpdateName> {
  readonly name: N;
  readonly raw: unknown;
  /** The signatures the registry's rule names, checked again, and their nonces taken (see acceptAuth). */
  accept(): DeltaSignature[];
  /** The signatures checked again, the nonces not yet taken (a request that takes them later). */
  signatures(): DeltaSignature[];
}

/** One update of the session: the rules its validator applies, and its handler. Its name is its key in Handlers. */
export interface Handler<N extends UpdateName> {
  /** The rules that need no waiting (they run in the validator); they never change state. */
  readonly check?: (ctx: SessionContext, request: Request<N>, name: N) => void;
  /** The handler: checks again (state may have moved), accepts the signatures, acts and records. */
  readonly run: (ctx: SessionContext, request: Request<N>, arrival: Arrival<N>) => unknown;
  /** Takes the argument as sent and parses it itself (a message recorded under an older schema replays so). */
  readonly parsesItself?: true;
}

/** A family's updates, by their names in the registry, in the order their handlers are set. */
export type Handlers = { readonly [N in UpdateName]?: Handler<N> };

/** What the registry's signer rules need from the session: who controls it, who holds a bond. */
export function signerContext(ctx: SessionContext): SignerContext {
  return {
    controllers: (controllers(ctx) as { anyOf: readonly string[] }).anyOf,
    voucherOf: (bondId) => bondOf(ctx, { bondId }).voucher,
  };
}

/**
 * The identity mode a request is checked in: the session's, or did:key for a request the registry says is
 * signed in every mode (SPEC §11.9: an SRE's request, a drift report).
 */
export function identityOf(ctx: SessionContext, name: UpdateName, request: unknown): SessionContext['identity'] {
  return signedInEveryMode(name, request) ? 'did:key' : ctx.identity;
}

/**
 * As identityOf, in a handler: an SRE request an identity-"none" session accepted unsigned before SRE
 * requests were signed in every mode (the session-kill fixture's kill) replays as it ran. The patch is
 * asked only where it acts: an SRE request in a session that is not did:key. (reportDrift has its own.)
 */
function handlerIdentityOf(ctx: SessionContext, name: UpdateName, request: unknown): SessionContext['identity'] {
  const identity = identityOf(ctx, name, request);
  if (identity === ctx.identity || name === 'reportDrift') return identity;
  return patched(SRE_REQUESTS_SIGNED) ? identity : ctx.identity;
}
export const SRE_REQUESTS_SIGNED = 'sre-requests-signed';

/** The DIDs that must sign this request, by the registry's rule (none for an unsigned message). */
export function signersOf(ctx: SessionContext, name: UpdateName, request: unknown): Signers | undefined {
  const rule = MESSAGES[name].signers as ((r: unknown, c: SignerContext) => Signers) | undefined;
  return rule?.(request, signerContext(ctx));
}

/** Registers each handler, in order (a request that arrived with the start runs as soon as its handler is set). */
export function wire(ctx: SessionContext, handlers: Handlers): void {
  for (const name of Object.keys(handlers) as UpdateName[]) wireOne(ctx, name, handlers[name] as Handler<typeof name>);
}

function wireOne<N extends UpdateName>(ctx: SessionContext, name: N, h: Handler<N>): void {
  const check = h.check && ((c: SessionContext, req: unknown) => h.check!(c, req as Request<N>, name));
  wf.setHandler(
    definitions[name] as UpdateDefinition<unknown, [unknown?]>,
    handle(
      ctx,
      (raw?: unknown) => {
        // Parsed again here, as the validator did: a replay runs no validator.
        const req = (h.parsesItself ? raw : request(MESSAGES[name].input, raw, name)) as Request<N>;
        return h.run(ctx, req, {
          name,
          raw,
          accept: () => acceptAuth(ctx, name, raw, req),
          signatures: () => signaturesOf(ctx, name, raw, req),
        });
      },
      name,
    ),
    { validator: validator(ctx, name, check), description: MESSAGES[name].description },
  );
}

/**
 * Updates run the rules; a rule's rejection fails the update (and only it)
 * with its error code. An unexpected error also fails only the update: no
 * input may fail the workflow task (SPEC §11.6).
 */
export function handle<A extends unknown[], R>(
  ctx: SessionContext,
  fn: (...args: A) => Promise<R> | R,
  name?: UpdateName,
) {
  return async (...args: A): Promise<R> => {
    ctx.updatesThisRun++;
    const id = name !== undefined ? currentRequestId() : undefined;
    const remembered = { value: false };
    try {
      if (!ctx.trailStarted) await wf.condition(() => ctx.trailStarted || ctx.fatal !== undefined);
      if (ctx.fatal) throw ctx.fatal;
      if (name !== undefined) {
        const earlier = earlierRequest(ctx, id, name, args[0]);
        if (earlier) {
          remembered.value = true;
          return firstAnswer(ctx, earlier, args[0]) as R;
        }
      }
      const answer = await fn(...args);
      if (name !== undefined) rememberRequest(ctx, id, name, args[0], { answer });
      return answer;
    } catch (err) {
      const failure = asFailure(err);
      const out = failure instanceof wf.ApplicationFailure ? failure : internal(err);
      // The session's own failure is not the request's answer: a resend after it is decided afresh.
      if (name !== undefined && !remembered.value && out !== ctx.fatal)
        rememberRequest(ctx, id, name, args[0], { error: out });
      throw out;
    }
  };
}

function internal(err: unknown): wf.ApplicationFailure {
  wf.log.error('session update failed unexpectedly', { error: String(err).slice(0, 500) });
  return wf.ApplicationFailure.nonRetryable(
    `internal error: ${String((err as Error)?.message ?? err).slice(0, 500)}`,
    'INTERNAL',
  );
}

/**
 * A validator: the registry's schema, then who signed it (the registry's signer rule), then the
 * rules that need no waiting. Throws a named error; never touches state.
 */
export function validator(ctx: SessionContext, what: UpdateName, rules?: (ctx: SessionContext, req: unknown) => void) {
  const schema = MESSAGES[what].input as Parameters<typeof parse>[0];
  return (arg?: unknown) => {
    governed(() => {
      if (ctx.windingDown) {
        throw new HypervisorError(
          'SESSION_CONTINUING',
          `cannot ${what} now: session ${ctx.sessionId} is continuing as new; send it again (the typed client does)`,
        );
      }
      // A resend of a request already applied: its handler returns the first answer.
      if (earlierRequest(ctx, currentRequestId(), what, arg)) return;
      if (what !== 'terminate') requireAuditCapacity(ctx, what);
      const req = parse(schema, arg, what);
      const signers = signersOf(ctx, what, req);
      const identity = identityOf(ctx, what, req);
      if (signers)
        checkAuth(
          {
            identity,
            everyMode: identity !== ctx.identity,
            sessionId: ctx.sessionId,
            windows: ctx.nonces,
            now: Date.now(),
          },
          what,
          arg,
          signers,
        );
      ctx.validating = true;
      try {
        rules?.(ctx, req);
      } finally {
        ctx.validating = false;
      }
    });
  };
}

/**
 * The handler's part of a signed request: the signatures the registry's rule
 * names for this request, checked again; returns those its delta keeps. The
 * signatures and issuedAt were checked by the validator, before the request
 * was accepted: they are a function of the request, and the workflow clock of
 * a replay is not the live one.
 */
export function signaturesOf(ctx: SessionContext, what: UpdateName, raw: unknown, request: unknown): DeltaSignature[] {
  const signers = signersOf(ctx, what, request);
  return signers
    ? checkAuth(
        { identity: handlerIdentityOf(ctx, what, request), sessionId: ctx.sessionId, windows: ctx.nonces },
        what,
        raw,
        signers,
      )
    : [];
}

/**
 * As signaturesOf, and the request's nonces are still fresh (a concurrent
 * request may have used one since the validator ran) and are remembered.
 */
export function acceptAuth(ctx: SessionContext, what: UpdateName, raw: unknown, request: unknown): DeltaSignature[] {
  const signatures = signaturesOf(ctx, what, raw, request);
  acceptNonces(ctx.nonces, what, raw);
  return signatures;
}

/** A request as its schema parses it, without its signatures (they are the request's proof, not its content). */
export function request<S extends Parameters<typeof parse>[0]>(
  schema: S,
  raw: unknown,
  what: string,
): Omit<ReturnType<typeof parse<S>>, 'auth'> {
  const parsed = parse(schema, raw, what) as Record<string, unknown> | null | undefined;
  if (parsed === null || typeof parsed !== 'object') return parsed as never; // an update without argument
  const { auth: _, ...req } = parsed;
  return req as never;
}
