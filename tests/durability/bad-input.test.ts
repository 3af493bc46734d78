/**
 * Issue 5, part 6: bad input. fast-check generates malformed inputs (each one
 * rejected by its zod schema) for every workflow input, update, signal and
 * query argument of src/contract/schemas.ts INPUTS, sent to a few live
 * sessions and a saga waiting at its ring 1 gate for approvals:
 *
 * - each update (approve, reject and witness included) is rejected
 *   (HypervisorError INVALID_INPUT) with a message naming the offending
 *   field, by its validator, before it enters history;
 * - each malformed `stepGrant` query argument is refused naming the field;
 * - a session input is rejected by the client (INVALID_INPUT naming the
 *   field) and, started raw past the client, fails its workflow with an
 *   INVALID_INPUT ApplicationFailure;
 * - a saga started by anything but its session — malformed input or a
 *   well-formed one claiming a session — fails at once with
 *   SAGA_NOT_STARTED_BY_SESSION (a saga's input is only ever the session's);
 * - each malformed signal (session `sagaEnded`, saga `restrict` and `wake`) is ignored;
 * - afterwards no history involved has any WorkflowTaskFailed event, every
 *   session and the saga answer their queries with their state unchanged, and
 *   they still work: the saga runs once approved, the sessions write, start a
 *   saga and terminate with a verifying chain.
 *
 * `activate` and `terminate` take no argument and are not fuzzed (an extra
 * argument is ignored). HV_FUZZ_SEED replays a run.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { z } from 'zod';
import { toHypervisorError, type SagaHandle, type SessionHandle } from '../../src/client';
import { INPUTS as MESSAGES } from '../../src/contract/schemas';
import { HypervisorError } from '../../src/core/errors';
import { verifyTrail } from '../../src/core/audit';
import { sagaWorkflowId } from '../../workflows/definitions';
import { Lab, SRE, toolStep, waitUntil } from './harness';
import { temporal } from '@temporalio/proto';

const EventType = temporal.api.enums.v1.EventType;
const did = 'did:mesh:alpha';
const approvers = ['did:mesh:beta', 'did:mesh:gamma'];
const DIGEST = 'ab'.repeat(32);
const step = {
  stepId: 'step-1',
  actionId: 'draft',
  agentDid: did,
  input: { delayMs: 0 },
  timeoutSeconds: 5,
  retry: { maximumAttempts: 2, initialIntervalSeconds: 1, backoffCoefficient: 2 },
  approvalDeadlineSeconds: 60,
};
const agentView = { did, sigmaRaw: 0.8, bondSum: 0.1, ringCap: 2, active: true };
const actionView = {
  actionId: 'draft',
  readOnly: false,
  admin: false,
  reversibility: 'FULL',
  omega: 0.2,
  executeApi: 'http://127.0.0.1:8080/execute',
  undoApi: null,
};
const ref = { sagaId: 'waiting', stepId: 'step-1', digest: DIGEST };

/** A valid value of every fuzzed message: the mutations start from these. */
const BASES: Record<string, unknown> = {
  sessionWorkflow: {
    sessionId: 'fz-base',
    creatorDid: did,
    maxUpdatesPerRun: 100,
    config: {
      maxParticipants: 5,
      minSigmaEff: 0.6,
      consistency: 'EVENTUAL',
      consensusQuorum: 2,
      sreWitnesses: [SRE],
      allowedToolOrigins: ['http://127.0.0.1:8080'],
    },
  },
  sagaWorkflow: {
    sessionId: 'fz-0',
    sagaId: 'g1',
    description: 'd',
    steps: [{ ...step, digest: DIGEST }],
    agents: [agentView],
    actions: [actionView],
    quorum: 2,
  },
  join: {
    agentDid: 'did:mesh:new',
    sigmaRaw: 0.8,
    actions: [
      {
        actionId: 'a',
        reversibility: 'FULL',
        riskWeight: 0.2,
        executeApi: 'handler:x.y',
        undoApi: 'http://127.0.0.1:8080/undo',
      },
    ],
  },
  leave: { agentDid: did },
  vouch: { voucher: did, vouchee: 'did:mesh:beta', bondPct: 0.2, expiresAt: 1 },
  releaseBond: { bondId: 'b1', reason: 'r' },
  checkAction: { agentDid: did, actionId: 'draft' },
  reportDrift: {
    agentDid: did,
    reporterDid: 'did:mesh:verifier',
    claimedEmbedding: [0.1, 0.2],
    observedEmbedding: [0.1, 0.2],
  },
  slash: { agentDid: did, reason: 'r', omega: 0.5, witnessDid: SRE },
  startSaga: { sagaId: 'g1', description: 'd', steps: [step] },
  approve: { ...ref, approverDid: 'did:mesh:beta' },
  reject: { ...ref, approverDid: 'did:mesh:beta', reason: 'no' },
  witness: { ...ref, witnessDid: SRE },
  vfsWrite: { agentDid: did, path: '/x', content: 'c' },
  vfsDelete: { agentDid: did, path: '/x' },
  vfsRead: { agentDid: did, path: '/x' },
  vfsSetPermissions: { agentDid: did, path: '/x', allowedDids: [did] },
  vfsSnapshot: { agentDid: did, snapshotId: 's1', label: 'l' },
  vfsRestore: { agentDid: did, snapshotId: 's1' },
  quarantine: { agentDid: did, sreDid: SRE, reason: 'r', ttlSeconds: 60 },
  release: { agentDid: did, sreDid: SRE, reason: 'r' },
  kill: { agentDid: did, sreDid: SRE, reason: 'r', substituteDid: 'did:mesh:beta' },
  requestElevation: { agentDid: did, ring: 1, ttlSeconds: 60, justification: 'j' },
  approveElevation: { agentDid: did, elevationId: 'elevation-1', digest: DIGEST, approverDid: 'did:mesh:beta' },
  revokeElevation: { agentDid: did, byDid: SRE, reason: 'r' },
  claimStep: ref,
  stepGrant: ref,
  openTurn: { agentDid: did, sagaId: 't1', description: 'd', deadlineSeconds: 60 },
  appendStep: { ...step, sagaId: 'waiting' },
  takeStep: { ...step, digest: DIGEST },
  decideSaga: { sagaId: 'waiting', stepId: 'step-1', decision: 'retry', sreDid: SRE, reason: 'r' },
  forkSaga: { sagaId: 'waiting', fromStepId: 'step-1', newSagaId: 'f1', description: 'd', steps: [step] },
  sagaAwaiting: { sagaId: 'waiting' },
  operatorDecision: { sagaId: 'waiting', stepId: 'step-1', round: 1 },
  endTurn: { agentDid: did, sagaId: 'waiting' },
  abortTurn: { agentDid: did, sagaId: 'waiting', reason: 'r' },
  turnView: { sagaId: 'waiting' },
  stepGate: 'step-1',
  pendingAuditBatch: { fromTurn: 1, through: 2 },
  sagaEnded: { sagaId: 'waiting' },
  restrict: { agents: [agentView], sessionState: 'terminating' },
  wake: { sessionContinued: true },
};
const NO_ARGUMENT = new Set(['activate', 'terminate']);
/** Keys a strict message must refuse: the removed per-step executors and quorum, and prototype names. */
const FOREIGN_KEYS = ['handler', 'executeApi', 'undoApi', 'quorum', 'digest', '__proto__', 'constructor', 'x'];

type Path = (string | number)[];
function paths(value: unknown, prefix: Path = []): Path[] {
  if (value === null || typeof value !== 'object') return [];
  const keys: (string | number)[] = Array.isArray(value) ? value.map((_, i) => i) : Object.keys(value);
  return keys.flatMap((k) => [
    [...prefix, k],
    ...paths((value as Record<string | number, unknown>)[k], [...prefix, k]),
  ]);
}
/** The paths of the plain objects in a value, the root included: where a foreign key can be added. */
function objectPaths(value: unknown): Path[] {
  const at = (p: Path) => p.reduce<unknown>((v, k) => (v as Record<string | number, unknown>)[k], value);
  return [[], ...paths(value)].filter((p) => {
    const v = at(p);
    return v !== null && typeof v === 'object' && !Array.isArray(v);
  });
}
type Change = { remove: true } | { value: unknown } | { add: string; value: unknown };
function mutate(base: unknown, path: Path, change: Change): unknown {
  const copy = structuredClone(base);
  if ('add' in change) {
    const node = path.reduce<unknown>((v, k) => (v as Record<string | number, unknown>)[k], copy);
    // An own key even for "__proto__", as JSON.parse would make it.
    Object.defineProperty(node, change.add, {
      value: change.value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
    return copy;
  }
  let node = copy as Record<string | number, unknown>;
  for (const k of path.slice(0, -1)) node = node[k] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  if ('remove' in change) {
    if (Array.isArray(node)) node.splice(Number(last), 1);
    else delete node[last];
  } else node[last] = change.value;
  return copy;
}
const json = (x: unknown): unknown => (x === undefined ? null : JSON.parse(JSON.stringify(x)));

/** What goes over the wire is JSON: every candidate is round-tripped, then kept only if its schema rejects it. */
function malformed(schema: z.ZodType, base: unknown): fc.Arbitrary<unknown> {
  const nasty = fc.oneof(
    fc.jsonValue({ maxDepth: 2 }),
    fc.constantFrom(
      null,
      '',
      -1,
      0,
      1.5,
      1e12,
      'not-a-did',
      'did:',
      true,
      [],
      {},
      'x'.repeat(300),
      'handler:x.y',
      'http://evil.example/x',
      'A'.repeat(64),
    ),
    fc.string({ maxLength: 40 }),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
  );
  const all = paths(base);
  const objects = objectPaths(base);
  // A bare value (a query's step id): anything else in its place.
  if (all.length === 0 && objects.length === 0)
    return fc
      .oneof(nasty, fc.jsonValue({ maxDepth: 2 }))
      .map(json)
      .filter((x) => !schema.safeParse(x).success);
  const change = fc
    .record({
      path: fc.constantFrom(...all),
      change: fc.oneof(
        { weight: 1, arbitrary: fc.constant({ remove: true as const }) },
        { weight: 4, arbitrary: nasty.map((value) => ({ value })) },
      ),
    })
    .map(({ path, change }) => mutate(base, path, change));
  const foreign = fc
    .record({ path: fc.constantFrom(...objects), add: fc.constantFrom(...FOREIGN_KEYS), value: nasty })
    .map(({ path, add, value }) => mutate(base, path, { add, value }));
  const mutation = all.length ? fc.oneof({ weight: 5, arbitrary: change }, { weight: 1, arbitrary: foreign }) : foreign;
  return fc
    .oneof({ weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) }, { weight: 5, arbitrary: mutation })
    .map(json)
    .filter((x) => !schema.safeParse(x).success);
}

/** The field the error must name: the first issue's path, as parse() writes it. */
function fieldOf(schema: z.ZodType, x: unknown): string {
  const issue = schema.safeParse(x).error!.issues[0]!;
  return `${issue.path.length ? issue.path.join('.') : '(root)'}: `;
}

describe('durability: malformed input to every workflow input, update, signal and query', function () {
  this.timeout(600_000);
  const lab = Lab.forSuite();
  const seed = process.env.HV_FUZZ_SEED ? Number(process.env.HV_FUZZ_SEED) : undefined;

  it('has a valid base for every message, and a malformed-input generator that only yields rejected input', () => {
    for (const [name, m] of Object.entries(MESSAGES)) {
      if (NO_ARGUMENT.has(name)) continue;
      assert.ok(name in BASES, `a base for ${name}`);
      const parsed = m.schema.safeParse(BASES[name]);
      assert.ok(parsed.success, `the base of ${name} is valid: ${JSON.stringify(parsed.error?.issues)}`);
      for (const x of fc.sample(malformed(m.schema, BASES[name]), 20))
        assert.equal(m.schema.safeParse(x).success, false);
    }
    // The removed messages are gone from the contract.
    for (const gone of ['ringView', 'sagaStarted', 'sagaEvent', 'sagaEscalated'])
      assert.ok(!(gone in MESSAGES), `${gone} is no longer a message`);
  });

  it('rejects each with an error naming the field, ignores malformed signals, changes no state, and the workflows still work', async () => {
    const { hv, client, taskQueue, tool } = lab;
    const counts: Record<string, number> = {};
    const count = (name: string) => {
      counts[name] = (counts[name] ?? 0) + 1;
    };
    const actions = [
      {
        actionId: 'draft',
        reversibility: 'FULL' as const,
        executeApi: tool.endpoint('execute'),
        undoApi: tool.endpoint('undo'),
      },
      { actionId: 'wire-money', reversibility: 'NONE' as const, executeApi: tool.endpoint('execute') },
    ];

    // A few live sessions, and a saga waiting at its ring 1 gate for a quorum of approvals.
    const sessions: SessionHandle[] = [];
    for (let i = 0; i < 4; i++) {
      const s = await hv.createSession({
        sessionId: `fz-${i}`,
        creatorDid: 'did:mesh:admin',
        config: { sreWitnesses: [SRE], allowedToolOrigins: [tool.base] },
      });
      await s.join({ agentDid: did, sigmaRaw: 0.97, actions });
      for (const a of approvers) await s.join({ agentDid: a, sigmaRaw: 0.8 });
      await s.activate();
      await s.handle.executeUpdate('vfsWrite', {
        args: [{ agentDid: did, path: `/sessions/fz-${i}/a.txt`, content: 'a' }],
      });
      sessions.push(s);
    }
    const saga: SagaHandle = await sessions[0]!.startSaga({
      sagaId: 'waiting',
      steps: [{ actionId: 'wire-money', agentDid: did, input: {}, approvalDeadlineSeconds: 3600 }],
    });
    await waitUntil(
      () => saga.state(),
      (s) => s.waiting !== null,
      'the saga to wait at its gate',
    );
    const snapshot = async () => ({
      sessions: await Promise.all(
        sessions.map(async (s) => ({ summary: await s.summary(), audit: await s.audit(), sagas: await s.sagas() })),
      ),
      saga: await saga.state(),
      grant: await sessions[0]!.stepGrant({ sagaId: 'waiting', stepId: 'step-1' }),
    });
    // Every session has sent its trail to the audit store, so nothing of its own is pending (no batch timer).
    await Promise.all(
      sessions.map((s) =>
        waitUntil(
          () => s.auditHead(),
          (h) => h.pending.length === 0,
          `session ${s.sessionId}'s trail to reach the store`,
        ),
      ),
    );
    const before = await snapshot();
    assert.equal(before.grant.decision.waitFor, 'consensus');
    const histories = async () =>
      Promise.all(
        [...sessions.map((s) => s.handle), saga.handle].map(async (h) => (await h.fetchHistory()).events ?? []),
      );
    const eventsBefore = await histories();

    const rejectsNaming = async (name: string, x: unknown, call: () => Promise<unknown>) => {
      let error: unknown;
      try {
        await call();
      } catch (err) {
        error = toHypervisorError(err);
      }
      assert.ok(
        error instanceof HypervisorError,
        `${name}(${JSON.stringify(x)?.slice(0, 200)}) was rejected (got ${String(error)})`,
      );
      assert.equal(error.code, 'INVALID_INPUT', `${name}: ${error.message}`);
      const field = fieldOf(MESSAGES[name]!.schema, x);
      assert.ok(error.message.includes(field), `${name}: "${error.message}" names ${field}`);
      count(name);
    };
    /** A refused query comes back as an error whose message is the workflow's: INVALID_INPUT's, naming the field. */
    const queryRefusedNaming = async (name: string, x: unknown, call: () => Promise<unknown>) => {
      const error = await call().then(
        () => undefined,
        (err: unknown) => err,
      );
      assert.ok(error instanceof Error, `${name}(${JSON.stringify(x)?.slice(0, 200)}) was refused`);
      assert.ok(
        error.message.includes(`invalid ${name}: ${fieldOf(MESSAGES[name]!.schema, x)}`),
        `${name}: "${error.message}" names ${fieldOf(MESSAGES[name]!.schema, x)}`,
      );
      count(`${name} (query)`);
    };

    const runs = (name: string) => ({ numRuns: MESSAGES[name]!.kind === 'update' ? 60 : 40, seed, endOnFailure: true });
    const properties = Object.entries(MESSAGES)
      .filter(([name]) => !NO_ARGUMENT.has(name))
      .map(async ([name, m], i) => {
        const arb = malformed(m.schema, BASES[name]);
        const session = sessions[i % sessions.length]!;
        if (m.kind === 'update') {
          await fc.assert(
            fc.asyncProperty(arb, (x) =>
              rejectsNaming(name, x, () =>
                (m.workflow === 'sagaWorkflow' ? saga.handle : session.handle).executeUpdate(name, { args: [x] }),
              ),
            ),
            runs(name),
          );
        } else if (name === 'stepGate') {
          // A retry's gate on the saga is total: whatever the argument, a denial, never an error.
          await fc.assert(
            fc.asyncProperty(arb, async (x) => {
              const decision = (await saga.handle.query(name, x)) as { allowed: boolean };
              assert.equal(decision.allowed, false, `stepGate(${JSON.stringify(x)?.slice(0, 100)}) denies`);
              count(`${name} (query)`);
            }),
            runs(name),
          );
        } else if (m.kind === 'query') {
          // Asked of the session that holds the waiting saga: only the argument is wrong.
          await fc.assert(
            fc.asyncProperty(arb, (x) => queryRefusedNaming(name, x, () => sessions[0]!.handle.query(name, x))),
            runs(name),
          );
        } else if (name === 'sessionWorkflow') {
          // Through the client: rejected before anything is started.
          await fc.assert(
            fc.asyncProperty(arb, (x) => rejectsNaming(name, x, () => hv.createSession(x as never))),
            runs(name),
          );
        } else if (m.kind === 'signal') {
          const target = m.workflow === 'sagaWorkflow' ? saga.handle : sessions[0]!.handle;
          await fc.assert(
            fc.asyncProperty(arb, async (x) => {
              await target.signal(name, x);
              count(`${name} (signal)`);
            }),
            runs(name),
          );
        }
        // sagaWorkflow: no client starts one (only its session does); raw starts below.
      });
    await Promise.all(properties);

    // Workflow inputs started raw, past the client.
    const rawIds: string[] = [];
    const rawStart = async (
      name: 'sessionWorkflow' | 'sagaWorkflow',
      workflowId: string,
      x: unknown,
      failure: { type: string; names?: string },
    ) => {
      rawIds.push(workflowId);
      const handle = await client.workflow.start(name, { taskQueue, workflowId, args: [x] });
      const history = await waitUntil(
        () => handle.fetchHistory(),
        (h) =>
          (h.events ?? []).some(
            (e) =>
              e.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED ||
              e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
          ),
        `${workflowId} to end`,
        60_000,
      );
      const taskFailure = history.events!.find((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED);
      assert.equal(
        taskFailure,
        undefined,
        `${name}(${JSON.stringify(x)?.slice(0, 200)}) failed a workflow task: ${taskFailure?.workflowTaskFailedEventAttributes?.failure?.message}`,
      );
      const err = await handle.result().then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure, `${workflowId} failed`);
      assert.equal(err.cause.type, failure.type, `${workflowId}: ${err.cause.message}`);
      if (failure.names)
        assert.ok(err.cause.message.includes(failure.names), `"${err.cause.message}" names ${failure.names}`);
      count(`${name} (raw start)`);
    };
    // A session: fails with INVALID_INPUT naming the field.
    const sessionSchema = MESSAGES.sessionWorkflow!.schema;
    const sessionInputs = [
      null,
      42,
      'x',
      [],
      {},
      ...fc.sample(malformed(sessionSchema, BASES.sessionWorkflow), { numRuns: 10, seed }),
    ];
    await Promise.all(
      sessionInputs.map((x, n) =>
        rawStart('sessionWorkflow', `fz-raw-sessionWorkflow-${n}`, x, {
          type: 'INVALID_INPUT',
          names: fieldOf(sessionSchema, x),
        }),
      ),
    );
    // A saga not started by its session: refused whatever its input — malformed, or well-formed and claiming
    // session fz-0 under the id that session would give it.
    const sagaSchema = MESSAGES.sagaWorkflow!.schema;
    const sagaInputs = [
      null,
      42,
      'x',
      [],
      {},
      ...fc.sample(malformed(sagaSchema, BASES.sagaWorkflow), { numRuns: 40, seed }),
    ];
    await Promise.all([
      ...sagaInputs.map((x, n) =>
        rawStart('sagaWorkflow', `fz-raw-sagaWorkflow-${n}`, x, { type: 'SAGA_NOT_STARTED_BY_SESSION' }),
      ),
      rawStart(
        'sagaWorkflow',
        sagaWorkflowId('fz-0', 'spoofed'),
        { ...(BASES.sagaWorkflow as object), sagaId: 'spoofed' },
        { type: 'SAGA_NOT_STARTED_BY_SESSION', names: 'startSaga' },
      ),
    ]);

    // Nothing changed, nothing failed.
    // What the fuzz added to the histories: refused updates left nothing; signals left their own event and the
    // workflow tasks that handled them; the saga, woken by its signals, only asked its session again.
    const eventsAfter = await histories();
    const WFT = new Set([
      EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
      EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
      EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
    ]);
    // The saga's re-ask: its activity, and the timer of its wait re-armed.
    const REASK = new Set([
      EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
      EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED,
      EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
      EventType.EVENT_TYPE_TIMER_STARTED,
      EventType.EVENT_TYPE_TIMER_CANCELED,
    ]);
    eventsAfter.forEach((events, w) => {
      const added = events.slice(eventsBefore[w]!.length);
      const isSaga = w === sessions.length;
      const signalled = w === 0 || isSaga;
      if (!signalled)
        assert.deepEqual(
          added.map((e) => EventType[e.eventType!]),
          [],
          `session fz-${w}: refused updates left no history`,
        );
      for (const e of added) {
        const ok =
          WFT.has(e.eventType!) ||
          e.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED ||
          (isSaga && REASK.has(e.eventType!));
        assert.ok(
          ok,
          `${isSaga ? 'the saga' : `session fz-${w}`}: unexpected ${EventType[e.eventType!]} after malformed input`,
        );
        if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
          assert.equal(e.activityTaskScheduledEventAttributes?.activityType?.name, 'readStepGrant');
      }
    });
    const after = await snapshot();
    assert.deepEqual(after, before);
    assert.equal(after.saga.saga.state, 'running');
    for (const s of after.sessions) assert.equal(s.audit.verification.ok, true);
    const involved = () => [...sessions.map((s) => s.handle.workflowId), saga.handle.workflowId, ...rawIds];
    assert.deepEqual(await lab.workflowTaskFailures(involved(), { strict: true }), []);

    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    console.log(
      `    ${total} malformed inputs: ${Object.entries(counts)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
    );
    assert.ok(total >= 1000, `at least 1,000 malformed inputs (sent ${total})`);

    // And they still work: the waiting saga runs once approved by a quorum.
    for (const approverDid of approvers)
      await sessions[0]!.approve({ sagaId: 'waiting', stepId: 'step-1', approverDid });
    const done = await saga.result();
    assert.equal(done.saga.state, 'completed', done.error ?? '');
    assert.deepEqual(done.grants['step-1']?.approvals.sort(), [...approvers].sort());
    assert.equal(tool.acted.get(`${saga.handle.workflowId}/step-1/execute`), 1);
    const more: SagaHandle[] = [];
    for (const [i, s] of sessions.entries()) {
      await s.handle.executeUpdate('vfsWrite', {
        args: [{ agentDid: did, path: `/sessions/fz-${i}/b.txt`, content: 'b' }],
      });
      more.push(
        await s.startSaga({
          sagaId: 'after',
          steps: [toolStep('draft', did, {}, { timeoutSeconds: 5, retry: { maximumAttempts: 2 } })],
        }),
      );
    }
    for (const g of more) assert.equal((await g.result()).saga.state, 'completed');
    for (const [i, s] of sessions.entries()) {
      const expected = i === 0 ? ['waiting', 'after'] : ['after'];
      await waitUntil(
        () => s.sagas(),
        (g) => g.length === expected.length && g.every((x) => x.state === 'completed'),
        `session fz-${i} to learn its sagas' outcomes`,
      );
      const ended = await s.terminate();
      const { trail, verification } = await s.audit();
      assert.equal(verification.ok, true);
      assert.equal(verifyTrail(trail).ok, true);
      assert.equal(
        ended.commitment.merkleRoot,
        trail.merkleRoot,
        `session fz-${i}: the committed root covers the whole trail`,
      );
    }
    assert.deepEqual(
      await lab.workflowTaskFailures([...involved(), ...more.map((g) => g.handle.workflowId)], { strict: true }),
      [],
    );
  });
});
