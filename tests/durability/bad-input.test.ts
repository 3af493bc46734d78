/**
 * Issue 5, part 6: bad input. fast-check generates malformed inputs (each one
 * rejected by its zod schema) for every workflow input, update and signal of
 * src/contractSchemas.ts MESSAGES, sent to a few live sessions and a saga:
 *
 * - each update is rejected (HypervisorError INVALID_INPUT) with a message
 *   naming the offending field, before it enters history;
 * - each workflow input is rejected by the client (INVALID_INPUT naming the
 *   field) and, started raw past the client, fails its workflow with an
 *   INVALID_INPUT ApplicationFailure — never a failing workflow task;
 * - each malformed signal is ignored;
 * - afterwards no workflow has a failing workflow task, and every session and
 *   the saga answer their queries with their state unchanged.
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
import { MESSAGES } from '../../src/contractSchemas';
import { HypervisorError } from '../../src/errors';
import { Lab, waitUntil } from './harness';
import { temporal } from '@temporalio/proto';

const EventType = temporal.api.enums.v1.EventType;
const did = 'did:mesh:alpha';
const step = { actionId: 'draft', agentDid: did, handler: 'x.y', timeoutSeconds: 5, retry: { maximumAttempts: 2, initialIntervalSeconds: 1, backoffCoefficient: 2 }, quorum: 2, approvalDeadlineSeconds: 60 };

/** A valid value of every fuzzed message: the mutations start from these. */
const BASES: Record<string, unknown> = {
  sessionWorkflow: { sessionId: 'fz-base', creatorDid: did, config: { maxParticipants: 5, minSigmaEff: 0.6, consistency: 'EVENTUAL' }, maxUpdatesPerRun: 100 },
  sagaWorkflow: { sessionId: 'fz-base', sagaId: 'g1', description: 'd', steps: [step] },
  join: { agentDid: 'did:mesh:new', sigmaRaw: 0.8, actions: [{ actionId: 'a', reversibility: 'FULL', riskWeight: 0.2 }] },
  leave: { agentDid: did },
  vouch: { voucher: did, vouchee: 'did:mesh:beta', bondPct: 0.2, expiresAt: 1 },
  releaseBond: { bondId: 'b1', reason: 'r' },
  checkAction: { agentDid: did, actionId: 'draft' },
  reportDrift: { agentDid: did, claimedEmbedding: [0.1, 0.2], observedEmbedding: [0.1, 0.2] },
  slash: { agentDid: did, reason: 'r', omega: 0.5, witnessDid: 'did:mesh:sre' },
  startSaga: { sagaId: 'g1', description: 'd', steps: [step] },
  vfsWrite: { agentDid: did, path: '/x', content: 'c' },
  vfsDelete: { agentDid: did, path: '/x' },
  vfsSetPermissions: { agentDid: did, path: '/x', allowedDids: [did] },
  vfsSnapshot: { agentDid: did, snapshotId: 's1', label: 'l' },
  vfsRestore: { agentDid: did, snapshotId: 's1' },
  approve: { stepId: 'step-1', approverDid: did },
  witness: { stepId: 'step-1', witnessDid: did },
  ringView: { version: 1, participants: { [did]: { ring: 2, sigmaEff: 0.8, active: true } }, actions: { draft: { readOnly: false, admin: false, reversibility: 'FULL' } }, sessionState: 'active' },
  sagaStarted: { sagaId: 'g', workflowId: 'w', description: 'd' },
  sagaEvent: { sagaId: 'g', kind: 'step_committed', stepId: 's', agentDid: did, actionId: 'a', sagaState: 'x', detail: 'd', allowed: true },
  sagaEscalated: { sagaId: 'g', stepId: 's', agentDid: did, actionId: 'a', reason: 'r' },
};
const NO_ARGUMENT = new Set(['activate', 'terminate']);

type Path = (string | number)[];
function paths(value: unknown, prefix: Path = []): Path[] {
  if (value === null || typeof value !== 'object') return [];
  const keys: (string | number)[] = Array.isArray(value) ? value.map((_, i) => i) : Object.keys(value);
  return keys.flatMap((k) => [[...prefix, k], ...paths((value as Record<string | number, unknown>)[k], [...prefix, k])]);
}
function mutate(base: unknown, path: Path, replacement: { remove: true } | { value: unknown }): unknown {
  const copy = structuredClone(base);
  let node = copy as Record<string | number, unknown>;
  for (const k of path.slice(0, -1)) node = node[k] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  if ('remove' in replacement) {
    if (Array.isArray(node)) node.splice(Number(last), 1);
    else delete node[last];
  } else node[last] = replacement.value;
  return copy;
}
const json = (x: unknown): unknown => (x === undefined ? null : JSON.parse(JSON.stringify(x)));

/** What goes over the wire is JSON: every candidate is round-tripped, then kept only if its schema rejects it. */
function malformed(schema: z.ZodType, base: unknown): fc.Arbitrary<unknown> {
  const nasty = fc.oneof(
    fc.jsonValue({ maxDepth: 2 }),
    fc.constantFrom(null, '', -1, 0, 1.5, 1e12, 'not-a-did', 'did:', true, [], {}, 'x'.repeat(300)),
    fc.string({ maxLength: 40 }),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
  );
  const all = paths(base);
  const mutation = fc.record({
    path: fc.constantFrom(...all),
    change: fc.oneof({ weight: 1, arbitrary: fc.constant({ remove: true as const }) }, { weight: 4, arbitrary: nasty.map((value) => ({ value })) }),
  }).map(({ path, change }) => mutate(base, path, change));
  return fc.oneof({ weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) }, { weight: 5, arbitrary: mutation })
    .map(json)
    .filter((x) => !schema.safeParse(x).success);
}

/** The field the error must name: the first issue's path, as parse() writes it. */
function fieldOf(schema: z.ZodType, x: unknown): string {
  const issue = schema.safeParse(x).error!.issues[0]!;
  return `${issue.path.length ? issue.path.join('.') : '(root)'}: `;
}

describe('durability: malformed input to every workflow input, update and signal', function () {
  this.timeout(600_000);
  const lab = Lab.forSuite();
  const seed = process.env.HV_FUZZ_SEED ? Number(process.env.HV_FUZZ_SEED) : undefined;

  it('has a valid base for every message, and a malformed-input generator that only yields rejected input', () => {
    for (const [name, m] of Object.entries(MESSAGES)) {
      if (NO_ARGUMENT.has(name)) continue;
      assert.ok(name in BASES, `a base for ${name}`);
      const parsed = m.schema.safeParse(BASES[name]);
      assert.ok(parsed.success, `the base of ${name} is valid: ${JSON.stringify(parsed.error?.issues)}`);
      for (const x of fc.sample(malformed(m.schema, BASES[name]), 20)) assert.equal(m.schema.safeParse(x).success, false);
    }
  });

  it('rejects each with an error naming the field, ignores malformed signals, and changes no state', async () => {
    const { hv, client, taskQueue } = lab;
    const counts: Record<string, number> = {};
    const count = (name: string) => { counts[name] = (counts[name] ?? 0) + 1; };

    // A few live sessions, and a saga waiting at its ring 1 gate for approvals.
    const sessions: SessionHandle[] = [];
    for (let i = 0; i < 4; i++) {
      const s = await hv.createSession({ sessionId: `fz-${i}`, creatorDid: 'did:mesh:admin' });
      await s.join({ agentDid: did, sigmaRaw: 0.97, actions: [{ actionId: 'draft', reversibility: 'FULL' }, { actionId: 'wire-money', reversibility: 'NONE' }] });
      await s.join({ agentDid: 'did:mesh:beta', sigmaRaw: 0.8 });
      await s.activate();
      await s.handle.executeUpdate('vfsWrite', { args: [{ agentDid: did, path: `/sessions/fz-${i}/a.txt`, content: 'a' }] });
      sessions.push(s);
    }
    const saga: SagaHandle = await sessions[0]!.startSaga({ sagaId: 'waiting', steps: [{ actionId: 'wire-money', agentDid: did, handler: 'x.y', quorum: 2, approvalDeadlineSeconds: 3600 }] });
    await waitUntil(() => sessions[0]!.audit(), (a) => a.trail.deltas.some((d) => d.changes[0]!.path.endsWith('/gate')), 'the saga to wait at its gate');
    const snapshot = async () => ({
      sessions: await Promise.all(sessions.map(async (s) => ({ summary: await s.summary(), audit: await s.audit(), sagas: await s.sagas() }))),
      saga: await saga.state(),
    });
    const before = await snapshot();

    const rejectsNaming = async (name: string, x: unknown, call: () => Promise<unknown>) => {
      let error: unknown;
      try {
        await call();
      } catch (err) {
        error = toHypervisorError(err);
      }
      assert.ok(error instanceof HypervisorError, `${name}(${JSON.stringify(x)?.slice(0, 200)}) was rejected (got ${String(error)})`);
      assert.equal(error.code, 'INVALID_INPUT', `${name}: ${error.message}`);
      const field = fieldOf(MESSAGES[name]!.schema, x);
      assert.ok(error.message.includes(field), `${name}: "${error.message}" names ${field}`);
      count(name);
    };

    const runs = (name: string) => ({ numRuns: MESSAGES[name]!.kind === 'update' ? 60 : 40, seed, endOnFailure: true });
    const properties = Object.entries(MESSAGES).filter(([name]) => !NO_ARGUMENT.has(name)).map(async ([name, m], i) => {
      const arb = malformed(m.schema, BASES[name]);
      const session = sessions[i % sessions.length]!;
      if (m.kind === 'update') {
        await fc.assert(fc.asyncProperty(arb, (x) => rejectsNaming(name, x, () => session.handle.executeUpdate(name, { args: [x] }))), runs(name));
      } else if (m.kind === 'workflow input') {
        // Through the client: rejected before anything is started.
        const start = name === 'sessionWorkflow'
          ? (x: unknown) => hv.createSession(x as never)
          : (x: unknown) => hv.startSaga(x as never);
        await fc.assert(fc.asyncProperty(arb, (x) => rejectsNaming(name, x, () => start(x))), runs(name));
      } else {
        const target = m.workflow === 'sagaWorkflow' ? saga.handle : session.handle;
        await fc.assert(fc.asyncProperty(arb, async (x) => {
          await target.signal(name, x);
          count(name);
        }), runs(name));
      }
    });
    await Promise.all(properties);

    // Workflow inputs started raw, past the client: the workflow fails with INVALID_INPUT naming the field.
    const rawIds: string[] = [];
    for (const name of ['sessionWorkflow', 'sagaWorkflow'] as const) {
      const schema = MESSAGES[name]!.schema;
      const inputs = [null, 42, 'x', [], {}, ...fc.sample(malformed(schema, BASES[name]), { numRuns: 10, seed })];
      await Promise.all(inputs.map(async (x, n) => {
        const workflowId = `fz-raw-${name}-${n}`;
        rawIds.push(workflowId);
        const handle = await client.workflow.start(name, { taskQueue, workflowId, args: [x] });
        const history = await waitUntil(() => handle.fetchHistory(), (h) => (h.events ?? []).some((e) =>
          e.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED || e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED), `${workflowId} to end`, 60_000);
        const taskFailure = history.events!.find((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED);
        assert.equal(taskFailure, undefined, `${name}(${JSON.stringify(x)}) failed a workflow task: ${taskFailure?.workflowTaskFailedEventAttributes?.failure?.message}`);
        const err = await handle.result().then(() => undefined, (e: unknown) => e);
        assert.ok(err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure, `${workflowId} failed`);
        assert.equal(err.cause.type, 'INVALID_INPUT');
        assert.ok(err.cause.message.includes(fieldOf(schema, x)), `"${err.cause.message}" names ${fieldOf(schema, x)}`);
        count(`${name} (raw start)`);
      }));
    }

    // Nothing changed, nothing failed.
    const after = await snapshot();
    assert.deepEqual(after, before);
    assert.equal(after.saga.saga.state, 'running');
    for (const s of after.sessions) assert.equal(s.audit.verification.ok, true);
    assert.deepEqual(await lab.workflowTaskFailures([...sessions.map((s) => s.handle.workflowId), saga.handle.workflowId, ...rawIds]), []);

    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    console.log(`    ${total} malformed inputs: ${Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    assert.ok(total >= 1000, `at least 1,000 malformed inputs (sent ${total})`);
  });
});
