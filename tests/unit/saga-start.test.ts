/**
 * A saga's start input, format 2 on (issue 20, src/core/sagaStart.ts): the session leaves out what is at its
 * default and the digests; the saga's parse and resolveStartInput give back exactly what format 1 — every
 * field and the session's digests — gave. Format 1 is read as it always was.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  flattenEntries,
  stepDigest,
  type ActionView,
  type AgentView,
  type SagaStep,
} from '../../src/core/sagaContract';
import { StartSagaRequestSchema, type SagaEntryInput } from '../../src/core/sagaRequests';
import { SessionConfigSchema } from '../../src/core/session';
import {
  SAGA_START_FORMAT,
  SagaWorkflowInputSchema,
  newerStartFormat,
  requestedStep,
  resolveStartInput,
  startActionView,
  startAgentView,
  startQuorum,
  START_QUORUM_DEFAULT,
  withoutDefaultIds,
  type SagaWorkflowInput,
} from '../../src/core/sagaStart';

const A = 'did:mesh:alpha';
const B = 'did:mesh:beta';
const ACTIONS: ActionView[] = [
  {
    actionId: 'draft',
    readOnly: false,
    admin: false,
    reversibility: 'FULL',
    omega: 0.2,
    executeApi: 'handler:x',
    undoApi: 'handler:x',
  },
  { actionId: 'read', readOnly: true, admin: false, reversibility: 'FULL', omega: 0, executeApi: null, undoApi: null },
  {
    actionId: 'root',
    readOnly: false,
    admin: true,
    reversibility: 'NONE',
    omega: 1,
    executeApi: 'https://x.test/a',
    undoApi: null,
  },
];
const AGENTS: AgentView[] = [
  { did: A, sigmaRaw: 0.85, bondSum: 0.1, ringCap: 2, active: true, restriction: 1 },
  { did: B, sigmaRaw: 0.5, bondSum: 0, ringCap: 0, active: false, elevation: { ring: 1, until: 5 } },
  { did: 'did:mesh:c', sigmaRaw: 0.7, bondSum: 0, ringCap: 0, active: true, elevation: null },
];

/** The session's two ways of giving a parsed request: as it did (format 1) and as it does (format 2). */
function inputs(entries: SagaEntryInput[], leased: (i: number) => boolean, sessionId = 's-1', sagaId = 'saga-1') {
  const req = StartSagaRequestSchema.parse({ steps: entries });
  const { steps, groups } = flattenEntries(req.steps);
  const digestOf = (s: SagaStep & { stepId: string }) =>
    stepDigest({ sessionId, sagaId, stepId: s.stepId, actionId: s.actionId, agentDid: s.agentDid, input: s.input });
  const common = { sessionId, sagaId, quorum: 2, ...(groups.length ? { groups } : {}) };
  const full: SagaWorkflowInput = {
    ...common,
    steps: steps.map((s, i) => ({ ...s, digest: digestOf(s), leased: leased(i) })),
    agents: AGENTS,
    actions: ACTIONS,
  };
  const compact: SagaWorkflowInput = {
    format: 2,
    ...common,
    steps: steps.map((s, i) => requestedStep(s, leased(i))),
    agents: AGENTS.map(startAgentView),
    actions: ACTIONS.map((a) => startActionView(a)),
  };
  const { quorum, ...rest } = common;
  const format3: SagaWorkflowInput = {
    format: 3,
    ...rest,
    ...startQuorum(quorum),
    steps: withoutDefaultIds(
      steps.map((s, i) => requestedStep(s, leased(i))),
      groups,
    ),
    agents: AGENTS.map(startAgentView),
    actions: ACTIONS.map((a) => startActionView(a, 3)),
  };
  // Format 4: format 3 without the session id, which the saga reads from its parent's workflow id.
  const { sessionId: _session, ...format4 } = {
    ...format3,
    format: 4 as const,
    actions: ACTIONS.map((a) => startActionView(a, 4)),
  };
  // Format 5: format 4 without an undoApi that is its action's executeApi.
  const format5 = { ...format4, format: 5 as const, actions: ACTIONS.map((a) => startActionView(a, 5)) };
  // Temporal carries them as JSON.
  const wire = (x: unknown) => JSON.parse(JSON.stringify(x)) as SagaWorkflowInput;
  return {
    full: wire(full),
    compact: wire(compact),
    format3: wire(format3),
    format4: wire(format4),
    format5: wire(format5),
    sessionId,
    digests: steps.map(digestOf),
  };
}

const read = (raw: SagaWorkflowInput, parentSessionId?: string) =>
  resolveStartInput(SagaWorkflowInputSchema.parse(raw), parentSessionId);

function assertSameReading(entries: SagaEntryInput[], leased: (i: number) => boolean = () => true) {
  const { full, compact, format3, format4, format5, sessionId, digests } = inputs(entries, leased);
  const { format, ...fromCompact } = read(compact);
  assert.equal(format, 2);
  assert.deepStrictEqual(fromCompact, read(full));
  const { format: three, ...from3 } = read(format3);
  assert.equal(three, 3);
  assert.deepStrictEqual(from3, fromCompact, 'format 3 reads as format 2 did');
  const { format: four, ...from4 } = read(format4, sessionId);
  assert.equal(four, 4);
  assert.deepStrictEqual(from4, fromCompact, 'format 4, its session id its parent’s, reads as format 2 did');
  const { format: five, ...from5 } = read(format5, sessionId);
  assert.equal(five, 5);
  assert.deepStrictEqual(from5, fromCompact, 'format 5, its undoApis put back, reads as format 2 did');
  assert.deepStrictEqual(
    fromCompact.steps.map((s) => s.digest),
    digests,
    "the saga's digests are the session's",
  );
  return { full, compact, format3, format4, format5 };
}

describe('the saga start input, formats 2 to 5 (issue 20)', () => {
  it('format 3 leaves out default step ids (a group counted as one entry; branches always named) and default omegas', () => {
    const { format3 } = assertSameReading([
      { actionId: 'draft', agentDid: A },
      {
        parallel: [
          { actionId: 'draft', agentDid: A },
          { actionId: 'read', agentDid: B },
        ],
        policy: 'ALL',
      },
      { actionId: 'draft', agentDid: B },
      { stepId: 'step-9', actionId: 'draft', agentDid: B },
      { stepId: 'step-5', actionId: 'draft', agentDid: B },
    ]);
    assert.deepEqual(
      format3.steps.map((s) => s.stepId),
      [undefined, 'g1.b1', 'g1.b2', undefined, 'step-9', undefined],
    );
    assert.equal(format3.quorum, undefined, 'the default quorum left out');
    assert.equal(START_QUORUM_DEFAULT, SessionConfigSchema.parse({}).consensusQuorum, "the session config's default");
    assert.deepEqual(startQuorum(3), { quorum: 3 });
    assert.equal(read({ ...format3, quorum: 3 }).quorum, 3);
    assert.deepEqual(
      format3.actions.map((a) => a.omega),
      [undefined, 0, 1],
      "FULL's default omega left out; a read's 0 and NONE's 1 (not its default 0.95) as given",
    );
  });

  it("a fork's steps (named as the original's) and a turn (no steps yet) read as format 2 did", () => {
    const { format3 } = assertSameReading([
      { stepId: 'step-2', actionId: 'draft', agentDid: B, input: { k: 1 } },
      { stepId: 'step-3', actionId: 'root', agentDid: A },
    ]);
    assert.deepEqual(
      format3.steps.map((s) => s.stepId),
      ['step-2', 'step-3'],
    );
    const turn = { agentDid: A, deadline: 99, direct: true as const };
    const base = { sessionId: 's-1', sagaId: 'saga-1', quorum: 2, steps: [], agents: AGENTS, turn };
    const { format: two, ...from2 } = read({ ...base, format: 2, actions: ACTIONS.map((a) => startActionView(a)) });
    const { format: three, ...from3 } = read({
      ...base,
      format: 3,
      actions: ACTIONS.map((a) => startActionView(a, 3)),
    });
    assert.deepEqual([two, three], [2, 3]);
    assert.deepStrictEqual(from3, from2);
  });

  it('reads as format 1 did: defaults put back, digests computed, leases said', () => {
    const { full, compact } = assertSameReading(
      [
        { actionId: 'draft', agentDid: A },
        { stepId: 'mine', actionId: 'draft', agentDid: B, input: { n: 1, deep: [null, 'x', { z: -0 }] } },
        { actionId: 'root', agentDid: A, input: null, timeoutSeconds: 300, approvalDeadlineSeconds: 3600 },
        { actionId: 'draft', agentDid: A, retry: { maximumAttempts: 3 }, timeoutSeconds: 12 },
        {
          actionId: 'draft',
          agentDid: A,
          retry: { maximumAttempts: 1, initialIntervalSeconds: 1, backoffCoefficient: 2 },
        },
        { actionId: 'draft', agentDid: A, retry: { maximumIntervalSeconds: 9, backoffCoefficient: 1.5 } },
        { actionId: 'read', agentDid: B, approvalDeadlineSeconds: 60, onFailure: { 'await-operator': {} } },
        { actionId: 'read', agentDid: B, onFailure: 'compensate', input: 'text' },
      ],
      (i) => i !== 5,
    );
    const steps = compact.steps as Record<string, unknown>[];
    assert.deepEqual(Object.keys(steps[0]!), ['stepId', 'actionId', 'agentDid'], 'a step at its defaults');
    assert.ok(
      steps.every((s) => !('digest' in s)),
      'no digest',
    );
    assert.deepEqual(
      steps.map((s) => s.leased),
      [undefined, undefined, undefined, undefined, undefined, false, undefined, undefined],
      'a lease said only when the step has none',
    );
    assert.deepEqual(steps[3]!.retry, { maximumAttempts: 3 });
    assert.equal(steps[4]!.retry, undefined, 'a retry at its default');
    assert.deepEqual(steps[5]!.retry, { backoffCoefficient: 1.5, maximumIntervalSeconds: 9 });
    assert.deepEqual(compact.agents, [
      { did: A, sigmaRaw: 0.85, bondSum: 0.1, ringCap: 2, restriction: 1 },
      { did: B, sigmaRaw: 0.5, active: false, elevation: { ring: 1, until: 5 } },
      { did: 'did:mesh:c', sigmaRaw: 0.7, elevation: null },
    ]);
    assert.deepEqual(
      compact.actions.map((a) => [a.readOnly, a.admin]),
      [
        [undefined, undefined],
        [true, undefined],
        [undefined, true],
      ],
    );
    assert.ok(JSON.stringify(compact).length < JSON.stringify(full).length / 2);
  });

  it("a parallel group's branches (g1.b2) and custom group ids are digested under their settled ids", () => {
    assertSameReading([
      { actionId: 'draft', agentDid: A },
      {
        parallel: [
          { actionId: 'draft', agentDid: A, input: { b: 1 } },
          { actionId: 'read', agentDid: B },
        ],
        policy: 'ALL',
      },
      {
        groupId: 'mine',
        parallel: [
          { actionId: 'draft', agentDid: B, stepId: 'x' },
          { actionId: 'draft', agentDid: A },
        ],
        policy: { atLeast: 1 },
      },
    ]);
  });

  it('any request — steps, named steps, groups — reads the same in every format (property)', () => {
    const json = fc.jsonValue({ maxDepth: 3 });
    const step = fc.record(
      {
        actionId: fc.constantFrom('draft', 'read', 'root'),
        agentDid: fc.constantFrom(A, B),
        input: json,
        timeoutSeconds: fc.constantFrom(300, 1, 86_400),
        approvalDeadlineSeconds: fc.constantFrom(3600, 10),
        retry: fc.record(
          {
            maximumAttempts: fc.integer({ min: 1, max: 5 }),
            initialIntervalSeconds: fc.constantFrom(1, 0.5),
            backoffCoefficient: fc.constantFrom(1, 2, 3),
            maximumIntervalSeconds: fc.constantFrom(1, 60),
          },
          { requiredKeys: [] },
        ),
      },
      { requiredKeys: ['actionId', 'agentDid'] },
    );
    const named = fc.record({ stepId: fc.constantFrom('step-1', 'step-2', 'step-3', 'x') });
    const entry = fc.oneof(
      step,
      fc.tuple(step, named).map(([s, n]) => ({ ...s, ...n })),
      fc.record({
        parallel: fc.array(step, { minLength: 1, maxLength: 3 }),
        policy: fc.constant('ALL' as const),
      }),
    );
    const unique = (entries: SagaEntryInput[]) => {
      const ids = entries.flatMap((e, i) =>
        'parallel' in e ? [] : [(e as { stepId?: string }).stepId ?? `step-${i + 1}`],
      );
      return new Set(ids).size === ids.length;
    };
    fc.assert(
      fc.property(
        fc.array(entry, { minLength: 1, maxLength: 6 }).filter(unique),
        fc.array(fc.boolean(), { maxLength: 6 }),
        (steps, l) => void assertSameReading(steps, (i) => l[i] ?? true),
      ),
      { numRuns: 200 },
    );
  });

  it('format 1 (every recorded history) is read as given; each format refuses the other’s digests', () => {
    const { full, compact } = inputs([{ actionId: 'draft', agentDid: A }], () => true);
    const given = SagaWorkflowInputSchema.parse(full);
    assert.equal(resolveStartInput(given), given, 'format 1: the parse, untouched');
    const noDigest = { ...full, steps: compact.steps };
    assert.match(
      JSON.stringify(SagaWorkflowInputSchema.safeParse(noDigest).error?.issues),
      /format 1 gives each step its digest/,
    );
    const withDigest = { ...compact, steps: full.steps };
    assert.match(
      JSON.stringify(SagaWorkflowInputSchema.safeParse(withDigest).error?.issues),
      /format 2 gives no digest/,
    );
    assert.equal(SagaWorkflowInputSchema.safeParse({ ...compact, format: 6 }).success, false, 'no other format');
    const noId = { ...compact, steps: [{ actionId: 'draft', agentDid: A }] };
    assert.match(
      JSON.stringify(SagaWorkflowInputSchema.safeParse(noId).error?.issues),
      /only format 3 on leaves a step id out/,
    );
    const noOmega = { ...compact, actions: [{ ...ACTIONS[0], omega: undefined }] };
    assert.match(
      JSON.stringify(SagaWorkflowInputSchema.safeParse(noOmega).error?.issues),
      /only format 3 on leaves omega out/,
    );
    const { quorum: _q, ...noQuorum } = compact;
    assert.match(
      JSON.stringify(SagaWorkflowInputSchema.safeParse(noQuorum).error?.issues),
      /only format 3 on leaves the quorum out/,
    );
  });

  it("format 4 gives no session id (the saga reads it from its parent's workflow id); every format before it does", () => {
    const { compact, format3, format4 } = inputs([{ actionId: 'draft', agentDid: A }], () => true);
    const issues = (raw: unknown) => JSON.stringify(SagaWorkflowInputSchema.safeParse(raw).error?.issues);
    assert.match(issues({ ...format4, sessionId: 'other' }), /"sessionId".*format 4 gives no session id/);
    const { sessionId: _s3, ...noSession3 } = format3;
    assert.match(issues(noSession3), /"sessionId".*format 3 gives the session id/);
    const { sessionId: _s2, ...noSession2 } = compact;
    assert.match(issues(noSession2), /"sessionId".*format 2 gives the session id/);
    const { sagaId: _g, ...noSaga } = format4;
    assert.match(issues(noSaga), /"sagaId"/, 'its saga id it gives (replay may run it under another workflow id)');
    assert.throws(() => read(format4), /without its session id/, "format 4 is read with its parent's session id");
  });

  it("a format newer than this build's is told apart from a bad input (a newer build's session wrote it)", () => {
    assert.equal(newerStartFormat({ format: SAGA_START_FORMAT + 1, anything: true }), SAGA_START_FORMAT + 1);
    for (const raw of [{ format: SAGA_START_FORMAT }, { format: 2 }, {}, { format: 6.5 }, { format: '6' }, null, 7])
      assert.equal(newerStartFormat(raw), undefined, JSON.stringify(raw));
    assert.equal(SagaWorkflowInputSchema.safeParse({ format: SAGA_START_FORMAT + 1 }).success, false);
  });

  it('format 5 leaves out an undoApi only when it is the executeApi: no undo (null) and another undo are given', () => {
    const { format4, format5, sessionId } = inputs([{ actionId: 'draft', agentDid: A }], () => true);
    assert.deepEqual(
      format5.actions.map((a) => ('undoApi' in a ? a.undoApi : 'left out')),
      ['left out', null, null],
      "draft's undo is its executeApi; read and root have none, said as null",
    );
    const other = { ...ACTIONS[0]!, undoApi: 'handler:y' };
    assert.equal(startActionView(other, 5).undoApi, 'handler:y', 'an undo of its own is given');
    assert.deepEqual(
      read(format5, sessionId).actions.map((a) => [a.executeApi, a.undoApi]),
      ACTIONS.map((a) => [a.executeApi, a.undoApi]),
      'read back: the executeApi for the one left out, null stays null',
    );
    const issues = (raw: unknown) => JSON.stringify(SagaWorkflowInputSchema.safeParse(raw).error?.issues);
    const { undoApi: _u, ...noUndo } = format4.actions[0]!;
    assert.match(
      issues({ ...format4, actions: [noUndo, ...format4.actions.slice(1)] }),
      /"undoApi".*only format 5 leaves undoApi out/,
      'format 4 gives every undoApi: one left out is refused, never read as the executeApi',
    );
  });
});
