/**
 * What the adversarial tests share. An attacker has nothing but a plain
 * Temporal client: workflow ids and message names (strings), and raw
 * `signal` / `executeUpdate` / `query` / `start` / `signalWithStart`. So do
 * these helpers — no HypervisorClient — except where a test checks what the
 * typed client refuses before sending.
 *
 * They also measure what an attack left behind: history events per
 * workflow, the session's audit chain (verified offline, as `hv audit verify`
 * does), workflow task failures, and the calls an HTTP tool received.
 */
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WorkflowFailedError, WorkflowUpdateFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, defaultPayloadConverter } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { registerStepHandler } from '../../activities/handlers';
import { verifyChain, verifyTrail, type AuditTrail, type ChainVerification } from '../../src/core/audit';
import { readTrail, toAuditTrail } from '../../src/store/trail';
import { canonicalJson, sha256Hex } from '../../src/core/hash';
import { isCompactOutcome } from '../../src/contract/sagaOutcome';
import { allowTestToolOrigin, testEnv } from '../helpers/env';
import { bySre, SRE_WITNESSES } from '../helpers/sre';
import { calls } from '../helpers/testHandlers';

export const EventType = temporal.api.enums.v1.EventType;
const WorkflowTaskFailedCause = temporal.api.enums.v1.WorkflowTaskFailedCause;
type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** The sessions' SRE witnesses: did:keys, since an SRE signs its requests in every identity mode (SPEC §11.9). */
export { SRE, SRE_ON_CALL, SRE_WITNESSES } from '../helpers/sre';
export const ATTACKER = 'did:mesh:mallory';

// ── The raw client ──────────────────────────────────────────────────────────

export async function rawClient(): Promise<{ client: Client; taskQueue: string }> {
  const env = await testEnv();
  return { client: env.client, taskQueue: env.taskQueue };
}

let counter = 0;
/** An id unique to this run, in the id alphabet (letters, digits, - _ : .). */
export function uid(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${++counter}`;
}

export const sessionWorkflowId = (sessionId: string) => `hv-session-${sessionId}`;
/** The id a session gives a saga it starts now, as the contract documents it (what an attacker squats or forges). */
export const sagaWorkflowId = (sessionId: string, sagaId: string) => `hv-saga-${sessionId}/${sagaId}`;

/** SPEC §11.5: SHA-256 of the canonical JSON of {sessionId, sagaId, stepId, actionId, agentDid, input}. */
export function stepDigest(s: {
  sessionId: string;
  sagaId: string;
  stepId: string;
  actionId: string;
  agentDid: string;
  input?: unknown;
}): string {
  return sha256Hex(
    canonicalJson({
      sessionId: s.sessionId,
      sagaId: s.sagaId,
      stepId: s.stepId,
      actionId: s.actionId,
      agentDid: s.agentDid,
      input: s.input ?? null,
    }),
  );
}

/** Actions as agents declare them at join: the test handlers, by name (tests/helpers/testHandlers.ts). */
const TEST_STEP = { executeApi: 'handler:test.step', undoApi: 'handler:test.step' };
export const ACTIONS = [
  { actionId: 'draft', reversibility: 'FULL', ...TEST_STEP },
  { actionId: 'publish', reversibility: 'FULL', ...TEST_STEP },
  { actionId: 'wire-money', reversibility: 'NONE', ...TEST_STEP },
  { actionId: 'read-report', readOnly: true, executeApi: 'handler:test.read' },
  { actionId: 'reconfigure', admin: true, reversibility: 'FULL', ...TEST_STEP },
];

export interface StartedSaga {
  sagaId: string;
  workflowId: string;
  digests: Record<string, string>;
}

/** A session workflow addressed by id, as any client of the namespace can. */
export class RawSession {
  /** The workflow ids the session answered for the sagas started through this client (startSaga's answer). */
  private readonly sagaWorkflowIds = new Map<string, string>();

  constructor(
    readonly id: string,
    readonly handle: WorkflowHandle,
    private readonly client: Client,
  ) {}

  get workflowId(): string {
    return this.handle.workflowId;
  }
  /** An update with these arguments (none: no argument at all); sent again while the session hands over to its next run, as the contract says. */
  async update<R = any>(name: string, ...args: unknown[]): Promise<R> {
    for (let attempt = 1; ; attempt++) {
      try {
        return this.noted(
          name,
          await (args.length
            ? this.handle.executeUpdate<R, [unknown, ...unknown[]]>(name, { args: args as [unknown, ...unknown[]] })
            : this.handle.executeUpdate<R, []>(name)),
        );
      } catch (err) {
        const cause = err instanceof WorkflowUpdateFailedError ? err.cause : undefined;
        if (!(cause instanceof ApplicationFailure && cause.type === 'SESSION_CONTINUING') || attempt >= 200) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }
  /** An SRE request (slash, kill, quarantine, release, witness, a revocation), signed by the SRE it names. */
  asSre<R = any>(name: string, request: unknown): Promise<R> {
    return this.update<R>(name, bySre(name, this.id, request));
  }
  /** An update with a chosen update id, to find it (or not) in history afterwards. */
  async updateWithId<R = any>(name: string, updateId: string, arg?: unknown): Promise<R> {
    return this.noted(
      name,
      await (arg === undefined
        ? this.handle.executeUpdate<R, []>(name, { updateId })
        : this.handle.executeUpdate<R, [unknown]>(name, { args: [arg], updateId })),
    );
  }
  /** A saga the session started: the workflow id it answered, for saga(). */
  private noted<R>(name: string, answer: R): R {
    if (name === 'startSaga') {
      const { sagaId, workflowId } = answer as StartedSaga;
      this.sagaWorkflowIds.set(sagaId, workflowId);
    }
    return answer;
  }
  query<R = any>(name: string, ...args: unknown[]): Promise<R> {
    return this.handle.query<R, unknown[]>(name, ...args);
  }
  signal(name: string, ...args: unknown[]): Promise<void> {
    return this.handle.signal(name, ...args);
  }

  summary(): Promise<any> {
    return this.query('summary');
  }
  /** The whole trail: the audit store's turns plus the deltas the session still holds. */
  async audit(): Promise<{ trail: AuditTrail; verification: ChainVerification }> {
    const { store } = await testEnv();
    const trail = toAuditTrail(await readTrail(store, this.id, () => this.query('auditHead')));
    return { trail, verification: verifyChain(trail.deltas) };
  }
  participant(did: string): Promise<any> {
    return this.query('participant', did);
  }
  sagaRecords(): Promise<any[]> {
    return this.query('sagas');
  }
  startSaga(req: unknown): Promise<StartedSaga> {
    return this.update('startSaga', req);
  }
  /** A saga under the workflow id the session gave it; one this client did not start, under the documented id. */
  saga(sagaId: string): WorkflowHandle {
    return this.client.workflow.getHandle(this.sagaWorkflowIds.get(sagaId) ?? sagaWorkflowId(this.id, sagaId));
  }
  sagaState(sagaId: string): Promise<any> {
    return this.saga(sagaId).query('sagaState');
  }
  /** The saga's final snapshot: its result, or the details of the failure it ended with. */
  sagaResult(sagaId: string): Promise<any> {
    return sagaOutcome(this.saga(sagaId));
  }
}

export interface AgentSpec {
  sigma: number;
  actions?: unknown[];
}

/**
 * Enough accepted updates (`checkAction`s by `agentDid`) for a session opened with maxUpdatesPerRun 10 to
 * continue as new, then until it has.
 */
export async function continueAsNew(session: RawSession, agentDid: string): Promise<void> {
  for (let i = 0; i < 10; i++) await session.update('checkAction', { agentDid, actionId: 'draft' });
  await until(
    () => session.summary(),
    (s) => s.runs >= 2,
    'the session to continue as new',
  );
}

/** Start a session raw, join agents (each declaring ACTIONS unless told otherwise) and activate it. */
export async function openSession(
  agents: Record<string, number | AgentSpec>,
  config: Record<string, unknown> = {},
  opts: { activate?: boolean; maxUpdatesPerRun?: number; sessionId?: string } = {},
): Promise<RawSession> {
  const { client, taskQueue } = await rawClient();
  const id = opts.sessionId ?? uid('adv');
  const handle = await client.workflow.start('sessionWorkflow', {
    taskQueue,
    workflowId: sessionWorkflowId(id),
    args: [
      {
        sessionId: id,
        creatorDid: 'did:mesh:admin',
        config: { sreWitnesses: SRE_WITNESSES, ...config },
        ...(opts.maxUpdatesPerRun ? { maxUpdatesPerRun: opts.maxUpdatesPerRun } : {}),
      },
    ],
  });
  const session = new RawSession(id, handle, client);
  for (const [agentDid, spec] of Object.entries(agents)) {
    const { sigma, actions } =
      typeof spec === 'number' ? { sigma: spec, actions: ACTIONS } : { actions: ACTIONS, ...spec };
    await session.update('join', { agentDid, sigmaRaw: sigma, actions });
  }
  if (opts.activate !== false) await session.update('activate');
  return session;
}

/**
 * A saga's full snapshot whether it completed or ended as a failed workflow: what it answered, or — its
 * compact outcome (issue 20) — its sagaState query, which a closed saga answers.
 */
export async function sagaOutcome(handle: WorkflowHandle): Promise<any> {
  const answer = await sagaAnswer(handle);
  return isCompactOutcome(answer) ? handle.query('sagaState') : answer;
}

/** What a saga's workflow answered: its result, or the details of the failure it ended with (SagaCompensated/…). */
export async function sagaAnswer(handle: WorkflowHandle): Promise<any> {
  try {
    return await handle.result();
  } catch (err) {
    const cause = err instanceof WorkflowFailedError ? err.cause : undefined;
    if (cause instanceof ApplicationFailure && /^Saga/.test(cause.type ?? '') && cause.details?.[0])
      return cause.details[0];
    throw err;
  }
}

// ── Refusals ────────────────────────────────────────────────────────────────

/** The ApplicationFailure a call was refused with (an update's, or a workflow's). */
export async function refusal(call: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err !== undefined, 'the request was accepted; it must be refused');
  const cause = err instanceof WorkflowUpdateFailedError || err instanceof WorkflowFailedError ? err.cause : err;
  assert.ok(
    cause instanceof ApplicationFailure,
    `refused with an ApplicationFailure, got ${String(err)}${cause && cause !== err ? ` caused by ${String(cause)}` : ''}`,
  );
  return cause;
}

/** Asserts the call is refused with this failure type and, when given, a message matching `names`. */
export async function refused(
  call: Promise<unknown>,
  type: string,
  names?: RegExp | string,
): Promise<ApplicationFailure> {
  const failure = await refusal(call);
  assert.equal(failure.type, type, `refused as ${type}; got ${failure.type}: ${failure.message}`);
  if (names !== undefined) {
    const ok = typeof names === 'string' ? failure.message.includes(names) : names.test(failure.message);
    assert.ok(ok, `"${failure.message}" names ${String(names)}`);
  }
  return failure;
}

// ── Histories ───────────────────────────────────────────────────────────────

export async function history(client: Client, workflowId: string): Promise<HistoryEvent[]> {
  return (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
}

export const eventName = (e: HistoryEvent) => EventType[e.eventType ?? 0] ?? String(e.eventType);

/** Every run of a workflow id (a session continues as new), oldest first. */
export async function runHistories(client: Client, workflowId: string): Promise<HistoryEvent[][]> {
  const runIds: string[] = [];
  for await (const w of client.workflow.list({ query: `WorkflowId = '${workflowId.replace(/'/g, "\\'")}'` }))
    runIds.push(w.runId);
  // Visibility may lag behind the latest run: add it when missing.
  const latest = (await client.workflow.getHandle(workflowId).describe()).runId;
  if (!runIds.includes(latest)) runIds.push(latest);
  return Promise.all(
    runIds
      .reverse()
      .map(async (runId) => (await client.workflow.getHandle(workflowId, runId).fetchHistory()).events ?? []),
  );
}

/**
 * Every WorkflowTaskFailed event in these histories, every run of each,
 * described, except (counted in `unhandledCommandTasks`) the server's
 * UNHANDLED_COMMAND: recorded when a signal arrives while the task that
 * completes the workflow (or continues it as new) is in flight — a push racing
 * a saga's end, a saga's end racing its session's hand-over; the SDK runs the
 * next task at once with the signal, nothing failed in the workflow's code
 * (RELIABILITY.md). `unhandledCommand: 'fail'` counts those too.
 */
export const unhandledCommandTasks: string[] = [];
export async function workflowTaskFailures(
  workflowIds: Iterable<string>,
  opts: { unhandledCommand?: 'fail' | 'tally' } = {},
): Promise<string[]> {
  const { client } = await rawClient();
  const out: string[] = [];
  for (const id of new Set(workflowIds)) {
    for (const e of (await runHistories(client, id)).flat()) {
      if (e.eventType !== EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED) continue;
      const a = e.workflowTaskFailedEventAttributes;
      if (
        opts.unhandledCommand !== 'fail' &&
        a?.cause === WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND
      ) {
        unhandledCommandTasks.push(`${id} event ${String(e.eventId)}`);
        continue;
      }
      out.push(
        `${id} event ${String(e.eventId)}: ${WorkflowTaskFailedCause[a?.cause ?? 0]}: ${a?.failure?.message ?? ''}`.slice(
          0,
          600,
        ),
      );
    }
  }
  return out;
}

/** The activities a workflow scheduled: type, first argument and when (epoch ms). */
export async function scheduledActivities(workflowId: string): Promise<{ type: string; arg: any; at: number }[]> {
  const { client } = await rawClient();
  return (await history(client, workflowId))
    .filter((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
    .map((e) => {
      const a = e.activityTaskScheduledEventAttributes!;
      const payload = a.input?.payloads?.[0];
      const at = Number(e.eventTime?.seconds ?? 0) * 1000 + Math.floor((e.eventTime?.nanos ?? 0) / 1e6);
      return {
        type: a.activityType?.name ?? '',
        arg: payload ? defaultPayloadConverter.fromPayload(payload as never) : undefined,
        at,
      };
    });
}

/** Step ids whose execute activity a saga scheduled. */
export async function executedSteps(workflowId: string): Promise<string[]> {
  return (await scheduledActivities(workflowId))
    .filter((a) => a.type === 'executeStep')
    .map((a) => String(a.arg?.stepId));
}

/** The ids of the updates a workflow accepted (every run). */
export async function acceptedUpdateIds(workflowId: string): Promise<string[]> {
  const { client } = await rawClient();
  return (await runHistories(client, workflowId))
    .flat()
    .map((e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.meta?.updateId)
    .filter((id): id is string => typeof id === 'string');
}

/** Events added to a history since a count, by name. */
export async function eventsSince(workflowId: string, count: number): Promise<string[]> {
  const { client } = await rawClient();
  return (await history(client, workflowId)).slice(count).map(eventName);
}

const WFT = new Set([
  'EVENT_TYPE_WORKFLOW_TASK_SCHEDULED',
  'EVENT_TYPE_WORKFLOW_TASK_STARTED',
  'EVENT_TYPE_WORKFLOW_TASK_COMPLETED',
]);
const TIMER = new Set(['EVENT_TYPE_TIMER_STARTED', 'EVENT_TYPE_TIMER_FIRED', 'EVENT_TYPE_TIMER_CANCELED']);
const ACTIVITY = new Set([
  'EVENT_TYPE_ACTIVITY_TASK_SCHEDULED',
  'EVENT_TYPE_ACTIVITY_TASK_STARTED',
  'EVENT_TYPE_ACTIVITY_TASK_COMPLETED',
]);

/**
 * A point to compare against: history lengths of some workflows and the
 * session's audit chain. `expectNoTrace` then checks what an attack left.
 */
export interface Mark {
  session: RawSession;
  events: Map<string, number>;
  deltaCount: number;
  lastHash: string | null;
}

export async function mark(session: RawSession, others: string[] = []): Promise<Mark> {
  const { client } = await rawClient();
  const events = new Map<string, number>();
  for (const id of [session.workflowId, ...others]) events.set(id, (await history(client, id)).length);
  const { trail } = await session.audit();
  return { session, events, deltaCount: trail.deltaCount, lastHash: trail.deltas.at(-1)?.hash ?? null };
}

/**
 * What an attack may leave, per workflow id: by default not one history event
 * (a refused update, a query). A workflow listed in `pushed` received signals:
 * it may have their WorkflowExecutionSignaled events and the workflow tasks
 * that handled them, plus the activities of the listed types (a wake-up makes a
 * saga re-read its session's grant, `readStepGrant`; a session that continued
 * as new reads a saga by id, `readSagaOutcome`) — nothing else. The session
 * itself may meanwhile send deltas recorded before the mark to the audit store
 * (its batch timer and `appendAuditDeltas`): that moves no delta, and the trail
 * is checked unchanged below.
 */
export async function expectNoTrace(
  m: Mark,
  pushed: Record<string, string[]> = {},
  attackers: string[] = [ATTACKER],
): Promise<void> {
  const { client } = await rawClient();
  for (const [id, before] of m.events) {
    const events = await history(client, id);
    const added = events.slice(before);
    const batching = id === m.session.workflowId;
    const activities = [...(pushed[id] ?? []), ...(batching ? ['appendAuditDeltas'] : [])];
    for (const e of added) {
      const name = eventName(e);
      const ok =
        WFT.has(name) ||
        (pushed[id] !== undefined && name === 'EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED') ||
        (batching && TIMER.has(name)) ||
        (ACTIVITY.has(name) &&
          (e.eventType !== EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED ||
            activities.includes(e.activityTaskScheduledEventAttributes?.activityType?.name ?? '')));
      assert.ok(
        ok,
        `${id}: the refused request left history (had ${before} events, now ${events.length}); found ${name}${name.includes('ACTIVITY_TASK_SCHEDULED') ? ` (${e.activityTaskScheduledEventAttributes?.activityType?.name})` : ''}`,
      );
    }
    if (activities.length === 0 && !batching)
      assert.deepEqual(added.map(eventName), [], `${id}: the refused request left no history`);
  }
  const { trail } = await m.session.audit();
  assert.equal(trail.deltaCount, m.deltaCount, `session ${m.session.id}: no delta was recorded`);
  assert.equal(trail.deltas.at(-1)?.hash ?? null, m.lastHash, 'the chain head is unchanged');
  await expectSoundAudit(m.session, attackers);
}

/** The session's chain verifies offline (chain, count, Merkle root) and no delta or change is the attackers'. */
export async function expectSoundAudit(session: RawSession, attackers: string[] = [ATTACKER]): Promise<AuditTrail> {
  const { trail, verification } = await session.audit();
  assert.equal(verification.ok, true, `the session's own verification: ${JSON.stringify(verification)}`);
  const offline = verifyTrail(JSON.parse(JSON.stringify(trail)));
  assert.equal(offline.ok, true, `the trail verifies offline: ${JSON.stringify(offline)}`);
  for (const d of trail.deltas) {
    assert.ok(
      !attackers.includes(d.agentDid),
      `delta ${d.turn} is attributed to attacker ${d.agentDid}: ${JSON.stringify(d.changes)}`,
    );
    for (const c of d.changes)
      assert.ok(!attackers.includes(c.agentDid), `a change of delta ${d.turn} is attributed to attacker ${c.agentDid}`);
  }
  return trail;
}

// ── Effects ─────────────────────────────────────────────────────────────────

/** Calls of the test handlers (test.step) for a saga workflow, by phase. */
export function handlerCalls(workflowId: string, phase: 'execute' | 'undo' = 'execute'): string[] {
  return (calls[workflowId] ?? []).filter((c) => c.phase === phase).map((c) => c.stepId);
}

/** A worker-side handler whose effect is visible: each call "sends a mail". */
export const mailsSent: { workflowId: string; stepId: string; agentDid: string }[] = [];
export function registerMailHandler(): void {
  registerStepHandler('adv.send-mail', {
    async execute(_input, ctx) {
      mailsSent.push({ workflowId: ctx.workflowId, stepId: ctx.stepId, agentDid: ctx.agentDid });
      return { sent: true };
    },
    async undo() {
      return { recalled: true };
    },
  });
}

/** A loopback HTTP tool that counts every request it receives (its side effects). */
export interface HttpTool {
  base: string;
  requests: { method: string; path: string }[];
  posts(path?: string): number;
  close(): Promise<void>;
}

/**
 * `workerAllows` (default true): the test worker lists the tool's origin, as
 * an operator lists a tool it runs (HV_TOOL_ORIGINS); false, only a session
 * config can name it.
 */
export async function httpTool(
  opts: { delayMs?: number; body?: (path: string) => unknown; workerAllows?: boolean } = {},
): Promise<HttpTool> {
  const requests: { method: string; path: string }[] = [];
  const server = http.createServer((req, res) => {
    requests.push({ method: req.method ?? '', path: req.url ?? '' });
    req.resume();
    req.on('end', () => {
      setTimeout(() => {
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify(opts.body ? opts.body(req.url ?? '') : { ok: req.url }));
      }, opts.delayMs ?? 0);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  if (opts.workerAllows !== false) allowTestToolOrigin(base);
  return {
    base,
    requests,
    posts: (path?: string) =>
      requests.filter((r) => r.method === 'POST' && (path === undefined || r.path === path)).length,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

// ── Waiting and the worker's health ─────────────────────────────────────────

export async function until<T>(
  probe: () => Promise<T>,
  ok: (v: T) => boolean,
  what: string,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let value: T | undefined;
    try {
      value = await probe();
      if (ok(value)) return value;
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(value)?.slice(0, 400)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The same worker still runs a fresh session and saga to completion: a ring 2
 * step, then a ring 1 step approved by the session's quorum. This is the check
 * that Object.prototype is clean in the worker's workflow context: every
 * request on the way is parsed by a strict schema (zod's strictObject
 * enumerates inherited keys too), so an enumerable key added to
 * Object.prototype — `({}).state` no longer undefined — would refuse them and
 * the saga would not complete. Returns the saga's snapshot.
 */
export async function freshSagaCompletes(): Promise<any> {
  const alpha = 'did:mesh:alpha';
  const session = await openSession({ [alpha]: 0.97, 'did:mesh:beta': 0.8, 'did:mesh:gamma': 0.8 });
  const started = await session.startSaga({
    steps: [
      { actionId: 'draft', agentDid: 'did:mesh:beta' },
      { actionId: 'wire-money', agentDid: alpha, approvalDeadlineSeconds: 120 },
    ],
  });
  assert.deepEqual(Object.keys(started.digests), ['step-1', 'step-2']);
  await until(
    () => session.sagaState(started.sagaId),
    (s) => s.waiting?.stepId === 'step-2',
    'the fresh saga to wait for approvals',
  );
  for (const approverDid of ['did:mesh:beta', 'did:mesh:gamma']) {
    await session.update('approve', {
      sagaId: started.sagaId,
      stepId: 'step-2',
      digest: started.digests['step-2'],
      approverDid,
    });
  }
  const snap = await session.sagaResult(started.sagaId);
  assert.equal(snap.saga.state, 'completed', `a fresh saga completes: ${snap.error}`);
  assert.deepEqual(
    snap.saga.steps.map((s: { state: string }) => s.state),
    ['committed', 'committed'],
  );
  assert.deepEqual([...snap.grants['step-2'].approvals].sort(), ['did:mesh:beta', 'did:mesh:gamma']);
  const summary = await until(
    () => session.summary(),
    (s) => s.sagas.every((g: { state: string }) => g.state === 'completed'),
    'the session to learn the outcome',
  );
  for (const p of summary.participants)
    assert.ok(Number.isFinite(p.sigmaEff) && [1, 2, 3].includes(p.ring), JSON.stringify(p));
  await expectSoundAudit(session);
  assert.deepEqual(await workflowTaskFailures([session.workflowId, started.workflowId]), []);
  return snap;
}
