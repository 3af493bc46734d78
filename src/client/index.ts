/**
 * A typed client for the hypervisor: sessions and sagas by their SPEC names.
 * Rule rejections come back as HypervisorError with the rule's code, whether
 * the update's validator or its handler refused.
 */
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { z } from 'zod';
import { HypervisorError } from '../core/errors';
import { parse } from '../core/common';
import { NoArgumentSchema, SessionInputSchema, type SessionInputRaw } from '../contract';
import { verifyChain, type AuditTrail, type ChainVerification } from '../core/audit';
import { openAuditStore, type AuditStore } from '../store';
import { signRequest, type RequestSigner } from './keys';
import { readTrail, toAuditTrail, verifyStoredTrail, type StoredTrail } from '../store/trail';
import {
  MESSAGES,
  messageOf,
  SESSION_WORKFLOW,
  sessionWorkflowId,
  type ArgsOf,
  type OutputOf,
  type QueryName,
  type RequestOf,
  type UpdateName,
} from '../contract/messages';
import { HvSessionId } from '../contract/searchAttributes';
import {
  listApprovals,
  listSagas,
  listSessions,
  type ApprovalListFilter,
  type ApprovalRow,
  type SagaListFilter,
  type SagaRow,
  type SessionListFilter,
  type SessionRow,
} from './lists';
import { sagaWorkflowIdOf } from './sagaIds';
import { stepAnswer, TurnHandle, type StepAnswer } from './turns';
import type { SagaSnapshot } from '../contract/sagaTypes';
import { isCompactOutcome, type SagaAnswer } from '../contract/sagaOutcome';
import type { SagaWorkflow, SessionWorkflow } from '../contract/workflows';
import { tlsConfig, tlsFromEnv, type TlsFiles } from '../node/connectionTls';
import {
  checkRequestSize,
  Gate,
  honouringRateLimits,
  DEFAULT_TASK_QUEUE,
  mapped,
  newRequestId,
  UPDATES_IN_FLIGHT_PER_SESSION,
  sagaAnswerOf,
  toHypervisorError,
  withUpdateRetries,
  type SendOptions,
  type StepEvidenceRequest,
} from './transport';
import { stepsToFork } from './fork';

export {
  checkRequestSize,
  DEFAULT_TASK_QUEUE,
  MAX_REQUEST_BYTES,
  RATE_LIMIT_WAIT_MS,
  SAGA_FAILURE_TYPES,
  sagaAnswerOf,
  sagaSnapshotOf,
  toHypervisorError,
  UPDATES_IN_FLIGHT_PER_SESSION,
  type SendOptions,
  type StepEvidenceRequest,
} from './transport';

/**
 * A session, as its clients talk to it. Each update of the registry is a method, sent as given (see `send`):
 * derived from src/contract/messages.ts (installed below), so an update is declared once. The methods
 * written here are the ones that do more: start a saga and hand back its handle, find a step's digest, read a
 * file's contents from the audit store.
 */
class SessionRequests {
  constructor(
    readonly sessionId: string,
    readonly handle: WorkflowHandle<SessionWorkflow>,
    private readonly hv: HypervisorClient,
  ) {}

  /**
   * Send an update through this session's queue. With the client's signer, the request is signed by the
   * registry's signer rule for the update (src/contract/messages.ts, the rule the session checks) as every DID
   * it names that the signer holds (once: a retry sends the same signature, which the session refuses as
   * the first answer, see below); `as` signs what names no DID (activate, terminate: the creator or an SRE;
   * releaseBond: the bond's voucher). An update without argument is sent as `{auth}` when signed.
   *
   * A RATE_LIMITED refusal is waited out and sent again as a new request (see SendOptions.failFast).
   *
   * Each call is one request with one request id — its Temporal update id, `requestId` or a new one
   * (newRequestId) — sent again, with the same id and the same signed argument, while the server is away or the
   * session hands over (UNAVAILABLE, DEADLINE_EXCEEDED, SESSION_CONTINUING): the session answers a resend of a
   * request it applied with the first answer (docs/CONTRACT.md, "Request ids").
   */
  send<N extends UpdateName>(
    name: N,
    ...[req, opts]: ArgsOf<N> extends [] ? [undefined?, SendOptions?] : [RequestOf<N>, SendOptions?]
  ): Promise<OutputOf<N>> {
    if (req !== undefined) checkRequestSize(name, req);
    return honouringRateLimits(opts, () => {
      const updateId = opts?.requestId ?? newRequestId();
      return mapped(
        () =>
          this.hv.updateGate(this.sessionId).run(() => {
            // Signed in its turn, not when queued: issuedAt must be within the session's window when it arrives.
            const arg =
              this.hv.signer && messageOf(name)?.signers
                ? signRequest(this.hv.signer, name, this.sessionId, req, opts?.as)
                : req;
            return withUpdateRetries(() =>
              arg === undefined
                ? this.handle.executeUpdate<OutputOf<N>, []>(name, { updateId })
                : this.handle.executeUpdate<OutputOf<N>, [unknown]>(name, { args: [arg], updateId }),
            );
          }),
        this.sessionId,
      );
    });
  }

  /** This session as a client that signs with `signer` reaches it (the AI SDK adapter's agent, its own keys). */
  signedBy(signer: RequestSigner): SessionHandle {
    return new HypervisorClient(this.hv.client, this.hv.taskQueue, undefined, signer).session(this.sessionId);
  }

  /** Ask a query of this session. */
  private ask<N extends QueryName>(name: N, ...args: ArgsOf<N>): Promise<OutputOf<N>> {
    return mapped(() => this.handle.query<OutputOf<N>, ArgsOf<N>>(name, ...args), this.sessionId);
  }

  /**
   * Start a saga: the session starts it as its child, from its own view. Every step's agent signs it (a did:key
   * session). `requestId`: this start's request id (default: a new one), to send the same start again later.
   */
  async startSaga(
    req: RequestOf<'startSaga'>,
    opts: Pick<SendOptions, 'requestId' | 'failFast'> = {},
  ): Promise<SagaHandle> {
    const { sagaId, workflowId, runId, digests } = await this.send('startSaga', req, opts);
    return this.hv.saga(this.sessionId, sagaId, { workflowId, digests, runId });
  }

  /**
   * Open a turn of `agentDid` (SPEC §13): a saga whose steps the agent appends one at a time. The handle
   * appends (each step's answer is its result or its error), ends and aborts it, signed as the agent.
   */
  async openTurn(req: RequestOf<'openTurn'>, opts: Pick<SendOptions, 'requestId'> = {}): Promise<TurnHandle> {
    const opened = await this.send('openTurn', req, opts);
    const saga = this.hv.saga(this.sessionId, opened.sagaId, { workflowId: opened.workflowId, runId: opened.runId });
    return new TurnHandle(this as unknown as SessionHandle, opened, saga);
  }

  /**
   * Append a step to the agent's open turn and wait for its answer: the step's result, or its error (a tool's
   * error, a denial when it ran, a rejection) — which does not end the turn. Refusals at the door (another
   * agent's turn, a step the gate denies, a budget spent) are thrown as HypervisorError with their code.
   */
  async appendStep(req: RequestOf<'appendStep'>, opts: Pick<SendOptions, 'requestId'> = {}): Promise<StepAnswer> {
    const appended = await this.send('appendStep', req, opts);
    const saga = this.hv.saga(this.sessionId, appended.sagaId, { workflowId: appended.workflowId });
    return stepAnswer(saga, appended);
  }

  /**
   * Fork a failed or compensated saga from one of its steps (SPEC §14): a new saga of its steps from there on,
   * read from the original's history, gated afresh; signed by every agent of those steps.
   */
  async forkSaga(
    req: Omit<RequestOf<'forkSaga'>, 'steps'>,
    opts: Pick<SendOptions, 'requestId'> = {},
  ): Promise<SagaHandle & { forkedFrom: { sagaId: string; stepId: string } }> {
    const original = await this.saga(req.sagaId);
    const steps = await mapped(() => stepsToFork(original.handle as never, req.sagaId, req.fromStepId), this.sessionId);
    const started = await this.send('forkSaga', { ...req, steps } as RequestOf<'forkSaga'>, opts);
    const handle = this.hv.saga(this.sessionId, started.sagaId, {
      workflowId: started.workflowId,
      digests: started.digests,
      runId: started.runId,
    });
    return Object.assign(handle, { forkedFrom: started.forkedFrom });
  }

  /** A saga of this session, under the workflow id the session gave it (src/client/sagaIds.ts); else SAGA_NOT_FOUND. */
  async saga(sagaId: string): Promise<SagaHandle> {
    const workflowId = await mapped(
      () => sagaWorkflowIdOf(this.hv.client, this.sessionId, sagaId, () => this.sagas()),
      this.sessionId,
    );
    if (workflowId === undefined)
      throw new HypervisorError('SAGA_NOT_FOUND', `saga ${sagaId} not found in session ${this.sessionId}`);
    return this.hv.saga(this.sessionId, sagaId, { workflowId });
  }

  /** A step's digest (SPEC §11.5): the one given, else the one its saga answers. */
  async stepDigest(step: StepEvidenceRequest): Promise<string> {
    if (step.digest) return step.digest;
    const snap = await (await this.saga(step.sagaId)).state();
    const digest = Object.hasOwn(snap.digests, step.stepId) ? snap.digests[step.stepId] : undefined;
    if (!digest) throw new HypervisorError('STEP_NOT_FOUND', `saga ${step.sagaId} has no step ${step.stepId}`);
    return digest;
  }

  /** The session's decision for a step now, with the evidence it holds. */
  async stepGrant(step: StepEvidenceRequest) {
    const ref = { sagaId: step.sagaId, stepId: step.stepId, digest: await this.stepDigest(step) };
    return this.ask('stepGrant', ref);
  }

  // The session VFS (SPEC §3): every edit is a delta in the audit chain.
  vfsList() {
    return this.ask('vfsList');
  }
  /** A file as this agent may see it: path, size and the hash of its contents in the audit store. Signed (vfsRead) when the client signs. */
  vfsStat(path: string, agentDid: string) {
    return this.hv.signer ? this.send('vfsRead', { agentDid, path }) : this.ask('vfsFile', path, agentDid);
  }
  /** A file's contents, read as this agent: the session checks the permission, the audit store has the contents. */
  async vfsFile(path: string, agentDid: string): Promise<string> {
    const ref = await this.vfsStat(path, agentDid);
    const content = await (await this.hv.auditStore()).getFile(this.sessionId, ref.contentHash);
    if (content === null)
      throw new HypervisorError(
        'FILE_NOT_FOUND',
        `the audit store has no contents with hash ${ref.contentHash} (file ${ref.path})`,
        { ...ref },
      );
    return content;
  }

  summary() {
    return this.ask('summary');
  }
  participant(did: string) {
    return this.ask('participant', did);
  }
  liability() {
    return this.ask('liabilityMatrix');
  }
  /** The trail's head, count and root, and the deltas the audit store does not have yet. */
  auditHead() {
    return this.ask('auditHead');
  }
  sagas() {
    return this.ask('sagas');
  }

  /** The trail as it stands: from the audit store (and, while the session is open, the deltas it still holds). */
  async storedTrail(): Promise<StoredTrail> {
    return readTrail(await this.hv.auditStore(), this.sessionId, () => this.auditHead());
  }

  /** The whole trail, with the chain's verification. */
  async audit(): Promise<{ trail: AuditTrail; verification: ChainVerification }> {
    const trail = toAuditTrail(await this.storedTrail());
    return { trail, verification: verifyChain(trail.deltas) };
  }

  /** Fetch the trail and verify it here, with nothing but the trail and the store: every turn, the chain, the Merkle root. */
  async verifyAudit() {
    const stored = await this.storedTrail();
    return { trail: toAuditTrail(stored), verification: verifyStoredTrail(stored) };
  }
}

/**
 * The updates sent as given, one method each: `session.join(req)`, `session.kill(req)`, `session.activate()`,
 * … — each signed as the registry's rule says (in a did:key session, or always for an SRE's word), with
 * `opts.as` for what names no DID (activate, terminate: the creator or an SRE; releaseBond: the voucher).
 */
type DerivedUpdate = Exclude<UpdateName, keyof SessionRequests>;
/** A request bound to a saga step's digest (approve, reject, witness): the method finds the digest when not given. */
type StepBound<R> = R extends { sagaId: string; stepId: string; digest: string }
  ? Omit<R, 'digest'> & { digest?: string }
  : R;
export type SessionUpdates = {
  [N in DerivedUpdate]: (
    ...args: ArgsOf<N> extends [] ? [opts?: SendOptions] : [req: StepBound<RequestOf<N>>, opts?: SendOptions]
  ) => Promise<OutputOf<N>>;
};
export type SessionHandle = SessionRequests & SessionUpdates;
export const SessionHandle = SessionRequests as new (
  ...args: ConstructorParameters<typeof SessionRequests>
) => SessionHandle;

for (const [name, m] of Object.entries(MESSAGES)) {
  if (m.kind !== 'update' || name in SessionRequests.prototype) continue;
  const bare = m.input === NoArgumentSchema;
  const shape: object = m.input instanceof z.ZodObject ? m.input.shape : {};
  const stepBound = 'sagaId' in shape && 'stepId' in shape && 'digest' in shape;
  Object.defineProperty(SessionRequests.prototype, name, {
    async value(this: SessionRequests, ...args: unknown[]) {
      const send = this.send.bind(this) as (n: string, req: unknown, opts?: SendOptions) => Promise<unknown>;
      if (bare) return send(name, undefined, args[0] as SendOptions);
      const req = stepBound
        ? { ...(args[0] as StepEvidenceRequest), digest: await this.stepDigest(args[0] as StepEvidenceRequest) }
        : args[0];
      return send(name, req, args[1] as SendOptions);
    },
    writable: true,
    configurable: true,
  });
}

export class SagaHandle {
  constructor(
    readonly sessionId: string,
    readonly sagaId: string,
    readonly handle: WorkflowHandle<SagaWorkflow>,
    /** Step id → digest, when known from the start. */
    readonly digests: Record<string, string> = {},
  ) {}

  state() {
    return mapped(() => this.handle.query<OutputOf<'sagaState'>>('sagaState'));
  }

  /**
   * The saga's final snapshot, whether it completed or ended compensated,
   * escalated or failed (those end as failed workflows, their answer in the
   * failure's details). A saga answers its compact outcome (issue 20): the
   * snapshot is then its `sagaState` query, which a closed saga answers too.
   */
  async result(): Promise<SagaSnapshot> {
    const answer = await this.outcome();
    return isCompactOutcome(answer) ? this.state() : (answer as SagaSnapshot);
  }

  /** What the saga's workflow answered — its compact outcome (an older saga's: its snapshot) — however it ended. */
  async outcome(): Promise<SagaAnswer> {
    try {
      return await this.handle.result();
    } catch (err) {
      const answer = sagaAnswerOf(err);
      if (answer) return answer;
      throw toHypervisorError(err);
    }
  }
}

export interface HypervisorClientOptions {
  address?: string;
  namespace?: string;
  taskQueue?: string;
  /** Signs every request the client sends (src/client/keys.ts KeyRing): required by did:key sessions. */
  signer?: RequestSigner;
  /** Mutual TLS to the frontend (a cluster's agent certificate); default: the TEMPORAL_TLS_* files (src/connectionTls.ts), else none. */
  tls?: TlsFiles;
}

export class HypervisorClient {
  private readonly gates = new Map<string, Gate>();
  private store: Promise<AuditStore> | undefined;
  private ownsStore = false;

  /**
   * `store`: the audit store the workers write to; by default the one the environment names (src/store).
   * `signer`: signs every request sent (issue 12), as the DIDs each speaks for.
   */
  constructor(
    readonly client: Client,
    readonly taskQueue: string = DEFAULT_TASK_QUEUE,
    store?: AuditStore,
    public signer?: RequestSigner,
  ) {
    if (store) this.store = Promise.resolve(store);
  }

  /** The audit store trails are read from (opened on first use: HV_AUDIT_DATABASE_URL, else the data dir's SQLite file). */
  auditStore(): Promise<AuditStore> {
    if (!this.store) {
      this.ownsStore = true;
      this.store = openAuditStore();
    }
    return this.store;
  }

  /** The queue of this client's updates to one session (see UPDATES_IN_FLIGHT_PER_SESSION). */
  updateGate(sessionId: string): Gate {
    let gate = this.gates.get(sessionId);
    if (!gate)
      this.gates.set(sessionId, (gate = new Gate(UPDATES_IN_FLIGHT_PER_SESSION, () => this.gates.delete(sessionId))));
    return gate;
  }

  static async connect(options: HypervisorClientOptions = {}): Promise<HypervisorClient> {
    const connection = await Connection.connect({
      address: options.address ?? process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233',
      tls: options.tls ? tlsConfig(options.tls) : tlsFromEnv(),
    });
    const client = new Client({
      connection,
      namespace: options.namespace ?? process.env.TEMPORAL_NAMESPACE ?? 'default',
    });
    return new HypervisorClient(
      client,
      options.taskQueue ?? process.env.HV_TASK_QUEUE ?? DEFAULT_TASK_QUEUE,
      undefined,
      options.signer,
    );
  }

  async close(): Promise<void> {
    if (this.ownsStore && this.store) await (await this.store.catch(() => undefined))?.close();
    await this.client.connection.close();
  }

  /** Create a session: starts its workflow (created → handshaking). */
  async createSession(input: SessionInputRaw): Promise<SessionHandle> {
    const v = parse(SessionInputSchema, input, 'session input');
    checkRequestSize('session input', input);
    const handle = await mapped(() =>
      this.client.workflow.start<SessionWorkflow>(SESSION_WORKFLOW, {
        taskQueue: this.taskQueue,
        workflowId: sessionWorkflowId(v.sessionId),
        args: [input],
        staticSummary: `Session ${v.sessionId} created by ${v.creatorDid}`,
        typedSearchAttributes: [{ key: HvSessionId, value: v.sessionId }],
      }),
    );
    return new SessionHandle(v.sessionId, handle, this);
  }

  /** Sessions on this task queue, newest first (open ones first), from the visibility store; bad filters: INVALID_INPUT naming the field. */
  listSessions(filter: SessionListFilter = {}): Promise<SessionRow[]> {
    return mapped(() => listSessions(this.client, this.taskQueue, filter));
  }

  /** Sagas on this task queue, newest first (open ones first), from the visibility store. */
  listSagas(filter: SagaListFilter = {}): Promise<SagaRow[]> {
    return mapped(() => listSagas(this.client, this.taskQueue, filter));
  }

  /** Every saga step waiting for approvals or an SRE witness, across sessions, oldest first: one visibility query. */
  listApprovals(filter: ApprovalListFilter = {}): Promise<ApprovalRow[]> {
    return mapped(() => listApprovals(this.client, this.taskQueue, filter));
  }

  session(sessionId: string): SessionHandle {
    return new SessionHandle(sessionId, this.client.workflow.getHandle(sessionWorkflowId(sessionId)), this);
  }

  /**
   * A saga under the workflow id its session gave it (startSaga's answer, the saga's record: SessionHandle.saga
   * looks it up); with the run id startSaga returned, exactly the run the session started.
   */
  saga(
    sessionId: string,
    sagaId: string,
    at: { workflowId: string; digests?: Record<string, string>; runId?: string },
  ): SagaHandle {
    const { workflowId, digests, runId } = at;
    return new SagaHandle(
      sessionId,
      sagaId,
      this.client.workflow.getHandle(workflowId, runId, runId ? { firstExecutionRunId: runId } : undefined),
      digests,
    );
  }
}

export { TurnHandle, type StepAnswer } from './turns';
export { governTools, governedTurn, GovernedToolError, type GovernOptions } from './aiSdk';
export type { ApprovalListFilter, ApprovalRow, SagaListFilter, SagaRow, SessionListFilter, SessionRow } from './lists';
