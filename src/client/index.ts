/**
 * A typed client for the hypervisor: sessions and sagas by their SPEC names.
 * Rule rejections come back as HypervisorError with the rule's code, whether
 * the update's validator or its handler refused.
 */
import { randomUUID } from 'node:crypto';
import {
  Client,
  Connection,
  QueryNotRegisteredError,
  QueryRejectedError,
  WorkflowFailedError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  type WorkflowHandle,
} from '@temporalio/client';
import { ApplicationFailure, WorkflowNotFoundError } from '@temporalio/common';
import { ERROR_CODES, HypervisorError, isHypervisorError, type ErrorCode } from '../core/errors';
import { parse } from '../core/common';
import { jsonSize, SessionInputSchema, type SessionInputRaw } from '../contract';
import { verifyChain, type AuditTrail, type ChainVerification } from '../core/audit';
import { openAuditStore, type AuditStore } from '../store';
import { signRequest, type RequestSigner } from './keys';
import { readTrail, toAuditTrail, verifyStoredTrail, type StoredTrail } from '../store/trail';
import {
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
import type { SagaSnapshot } from '../contract/sagaTypes';
import type { SagaWorkflow, SessionWorkflow } from '../contract/workflows';
import { tlsConfig, tlsFromEnv, type TlsFiles } from '../node/connectionTls';

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
 * Temporal admits at most 10 updates in flight per workflow run and refuses the
 * 11th (RESOURCE_EXHAUSTED). A session is one workflow that every agent talks
 * to, so this client queues its own updates per session below that limit — a
 * burst waits its turn instead of being refused — and retries a refusal caused
 * by other clients, or an update aborted when the session continued as new.
 */
export const UPDATES_IN_FLIGHT_PER_SESSION = 8;
const UPDATE_RETRY_BUDGET_MS = 120_000;

class Gate {
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
 * update aborted by continue-as-new — or no answer at all: the server unavailable (gRPC 14) or the call out of
 * time (gRPC 4, or the SDK's wait for the update's outcome). Sent again with the same request id, a request the
 * session applied meanwhile gets its first answer (N25), so retrying any of them is safe.
 */
function isTransientUpdateRefusal(err: unknown): boolean {
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
      /RESOURCE_EXHAUSTED|UNAVAILABLE|DEADLINE_EXCEEDED|in-flight updates|update aborted|workflow update was aborted|unexpected workflow task failure/i.test(
        e.message ?? '',
      )
    )
      return true;
  }
  return false;
}

async function withUpdateRetries<T>(call: () => Promise<T>): Promise<T> {
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

/** Failure types a saga ends with when it did not complete; the snapshot is in the details. */
export const SAGA_FAILURE_TYPES = ['SagaCompensated', 'SagaEscalated', 'SagaFailed'];

/** The snapshot of a saga that ended as a failed workflow, or undefined for any other error. */
export function sagaSnapshotOf(err: unknown): SagaSnapshot | undefined {
  const cause = err instanceof WorkflowFailedError ? err.cause : undefined;
  if (cause instanceof ApplicationFailure && SAGA_FAILURE_TYPES.includes(cause.type ?? '') && cause.details?.[0]) {
    return cause.details[0] as SagaSnapshot;
  }
  return undefined;
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

async function mapped<T>(call: () => Promise<T>, sessionId?: string): Promise<T> {
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
async function honouringRateLimits<T>(opts: SendOptions | undefined, send: () => Promise<T>): Promise<T> {
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

export class SessionHandle {
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
   * Each call is one request with one request id — its Temporal update id, `requestId` or a new UUID — sent
   * again, with the same id and the same signed argument, while the server is away or the session hands over
   * (UNAVAILABLE, DEADLINE_EXCEEDED, SESSION_CONTINUING): the session answers a resend of a request it applied
   * with the first answer (docs/CONTRACT.md, "Request ids").
   */
  send<N extends UpdateName>(
    name: N,
    ...[req, opts]: ArgsOf<N> extends [] ? [undefined?, SendOptions?] : [RequestOf<N>, SendOptions?]
  ): Promise<OutputOf<N>> {
    if (req !== undefined) checkRequestSize(name, req);
    return honouringRateLimits(opts, () => {
      const updateId = opts?.requestId ?? randomUUID();
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

  /** Ask a query of this session. */
  private ask<N extends QueryName>(name: N, ...args: ArgsOf<N>): Promise<OutputOf<N>> {
    return mapped(() => this.handle.query<OutputOf<N>, ArgsOf<N>>(name, ...args), this.sessionId);
  }

  join(req: RequestOf<'join'>) {
    return this.send('join', req);
  }
  /** `as`: the DID that signs it (the creator or an SRE), in a did:key session; by default the signer's first. */
  activate(opts: { as?: string } = {}) {
    return this.send('activate', undefined, opts);
  }
  leave(req: RequestOf<'leave'>) {
    return this.send('leave', req);
  }
  vouch(req: RequestOf<'vouch'>) {
    return this.send('vouch', req);
  }
  /** `as`: the bond's voucher, who signs it in a did:key session; by default the signer's first DID. */
  releaseBond(req: RequestOf<'releaseBond'>, opts: { as?: string } = {}) {
    return this.send('releaseBond', req, opts);
  }
  checkAction(req: RequestOf<'checkAction'>) {
    return this.send('checkAction', req);
  }
  reportDrift(req: RequestOf<'reportDrift'>) {
    return this.send('reportDrift', req);
  }
  /** Signed by the SRE witness (`witnessDid`). */
  slash(req: RequestOf<'slash'>) {
    return this.send('slash', req);
  }
  /** `as`: the DID that signs it (the creator or an SRE), in a did:key session; by default the signer's first. */
  terminate(opts: { as?: string } = {}) {
    return this.send('terminate', undefined, opts);
  }

  // Controls (SPEC §12). Quarantine, release and kill are signed by the SRE (`sreDid`), an elevation by its agent,
  // its approval by the approver (`approverDid`), its revocation by `byDid`.
  quarantine(req: RequestOf<'quarantine'>) {
    return this.send('quarantine', req);
  }
  release(req: RequestOf<'release'>) {
    return this.send('release', req);
  }
  kill(req: RequestOf<'kill'>) {
    return this.send('kill', req);
  }
  requestElevation(req: RequestOf<'requestElevation'>) {
    return this.send('requestElevation', req);
  }
  approveElevation(req: RequestOf<'approveElevation'>) {
    return this.send('approveElevation', req);
  }
  revokeElevation(req: RequestOf<'revokeElevation'>) {
    return this.send('revokeElevation', req);
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

  private async digestOf(step: StepEvidenceRequest): Promise<string> {
    if (step.digest) return step.digest;
    const snap = await (await this.saga(step.sagaId)).state();
    const digest = Object.hasOwn(snap.digests, step.stepId) ? snap.digests[step.stepId] : undefined;
    if (!digest) throw new HypervisorError('STEP_NOT_FOUND', `saga ${step.sagaId} has no step ${step.stepId}`);
    return digest;
  }

  /** Approve a step as another active participant (SPEC §11.5: bound to the step's digest). */
  async approve(step: StepEvidenceRequest & { approverDid: string }) {
    const req = {
      sagaId: step.sagaId,
      stepId: step.stepId,
      digest: await this.digestOf(step),
      approverDid: step.approverDid,
    };
    return this.send('approve', req);
  }

  /** Reject a step: it is denied at once. */
  async reject(step: StepEvidenceRequest & { approverDid: string; reason: string }) {
    const req = {
      sagaId: step.sagaId,
      stepId: step.stepId,
      digest: await this.digestOf(step),
      approverDid: step.approverDid,
      reason: step.reason,
    };
    return this.send('reject', req);
  }

  /** Co-sign a ring 0 step as one of the session's SRE witnesses. */
  async witness(step: StepEvidenceRequest & { witnessDid: string }) {
    const req = {
      sagaId: step.sagaId,
      stepId: step.stepId,
      digest: await this.digestOf(step),
      witnessDid: step.witnessDid,
    };
    return this.send('witness', req);
  }

  /** The session's decision for a step now, with the evidence it holds. */
  async stepGrant(step: StepEvidenceRequest) {
    const ref = { sagaId: step.sagaId, stepId: step.stepId, digest: await this.digestOf(step) };
    return this.ask('stepGrant', ref);
  }

  // The session VFS (SPEC §3): every edit is a delta in the audit chain.
  vfsWrite(req: RequestOf<'vfsWrite'>) {
    return this.send('vfsWrite', req);
  }
  vfsDelete(req: RequestOf<'vfsDelete'>) {
    return this.send('vfsDelete', req);
  }
  vfsSetPermissions(req: RequestOf<'vfsSetPermissions'>) {
    return this.send('vfsSetPermissions', req);
  }
  vfsSnapshot(req: RequestOf<'vfsSnapshot'>) {
    return this.send('vfsSnapshot', req);
  }
  vfsRestore(req: RequestOf<'vfsRestore'>) {
    return this.send('vfsRestore', req);
  }
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
   * escalated or failed (those end as failed workflows, the snapshot in the
   * failure's details).
   */
  async result(): Promise<SagaSnapshot> {
    try {
      return await this.handle.result();
    } catch (err) {
      const snapshot = sagaSnapshotOf(err);
      if (snapshot) return snapshot;
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

export type { ApprovalListFilter, ApprovalRow, SagaListFilter, SagaRow, SessionListFilter, SessionRow } from './lists';
