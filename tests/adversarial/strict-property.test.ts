/**
 * No request is silently trimmed (issue 23), as a property: every update of
 * the registry, sent to a live session as a request that parses, then with one
 * change — an unknown key (Object.prototype names included), a misspelled
 * field (the `sigma_raw` a Go client sent), or an optional field (one the
 * session defaults when it is absent) of the wrong type — is refused
 * INVALID_INPUT naming that key, and the session records nothing. The session
 * input is checked the same way on its schema and, for a sample, by starts.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MESSAGES, type UpdateName } from '../../src/contract/messages';
import { contractFiles } from '../../src/contract/schemas';
import { SessionInputSchema } from '../../src/contract';
import { openSession, rawClient, refusal, refused, sessionWorkflowId, uid } from './raw';

const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';
const SRE = 'did:mesh:sre';
const digest = 'ab'.repeat(32);

/** One request per update that its schema accepts (the test checks that first); none need be granted. */
const SAMPLES: Record<UpdateName, Record<string, unknown>> = {
  join: { agentDid: 'did:mesh:newcomer', sigmaRaw: 0.6 },
  activate: {},
  leave: { agentDid: beta },
  vouch: { voucher: alpha, vouchee: beta, bondPct: 0.1 },
  releaseBond: { bondId: 'bond-1' },
  checkAction: { agentDid: alpha, actionId: 'draft' },
  reportDrift: { agentDid: beta, reporterDid: SRE, claimedEmbedding: [1, 0], observedEmbedding: [0, 1] },
  slash: { agentDid: beta, reason: 'r', witnessDid: SRE },
  startSaga: { steps: [{ actionId: 'draft', agentDid: alpha }] },
  approve: { sagaId: 'saga-1', stepId: 'step-1', digest, approverDid: beta },
  reject: { sagaId: 'saga-1', stepId: 'step-1', digest, approverDid: beta, reason: 'no' },
  witness: { sagaId: 'saga-1', stepId: 'step-1', digest, witnessDid: SRE },
  claimStep: { sagaId: 'saga-1', stepId: 'step-1', digest },
  quarantine: { agentDid: beta, sreDid: SRE, reason: 'r', ttlSeconds: 60 },
  release: { agentDid: beta, sreDid: SRE },
  kill: { agentDid: beta, sreDid: SRE, reason: 'r' },
  requestElevation: { agentDid: beta, ring: 2, ttlSeconds: 60, justification: 'why' },
  approveElevation: { agentDid: beta, elevationId: 'elevation-1', digest, approverDid: alpha },
  revokeElevation: { agentDid: beta, byDid: SRE },
  terminate: {},
  vfsWrite: { agentDid: alpha, path: '/shared/a.txt', content: 'x' },
  vfsDelete: { agentDid: alpha, path: '/shared/a.txt' },
  vfsSetPermissions: { agentDid: alpha, path: '/shared/a.txt', allowedDids: [alpha] },
  vfsSnapshot: { agentDid: alpha, snapshotId: 'snap-1' },
  vfsRestore: { agentDid: alpha, snapshotId: 'snap-1' },
  vfsRead: { agentDid: alpha, path: '/shared/a.txt' },
  openTurn: { agentDid: alpha },
  appendStep: { sagaId: 'saga-1', agentDid: alpha, actionId: 'draft' },
  endTurn: { sagaId: 'saga-1', agentDid: alpha },
  abortTurn: { sagaId: 'saga-1', agentDid: alpha, reason: 'r' },
  decideSaga: { sagaId: 'saga-1', decision: 'retry', sreDid: SRE },
  forkSaga: {
    sagaId: 'saga-1',
    fromStepId: 'step-1',
    steps: [{ stepId: 'step-1', actionId: 'draft', agentDid: alpha }],
  },
};

// The session's updates (takeStep, the saga's, is refused by its own validator: tests/adversarial/turn-direct.test.ts).
const UPDATES = (Object.keys(MESSAGES) as (keyof typeof MESSAGES)[]).filter(
  (n): n is UpdateName => MESSAGES[n].kind === 'update' && MESSAGES[n].workflow === 'sessionWorkflow',
);

interface ObjectSchema {
  type?: string;
  properties?: Record<string, { type?: string }>;
  required?: string[];
}
/** The contract's top-level properties of an update's argument (what a client in any language reads). */
function propertiesOf(name: string): { all: string[]; optional: string[] } {
  const s = JSON.parse(contractFiles()[`${name}.schema.json`]!) as ObjectSchema & { anyOf?: ObjectSchema[] };
  const o = [s, ...(s.anyOf ?? [])].find((x) => x.type === 'object')!;
  const all = Object.keys(o.properties ?? {});
  return { all, optional: all.filter((k) => k !== 'auth' && !(o.required ?? []).includes(k)) };
}

/** Spellings of `key` a hurried client writes, none of them a property of the request. */
function misspellings(key: string, props: readonly string[]): string[] {
  const snake = key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  const out = [snake, `${key}s`, key.slice(0, -1), key[0]!.toUpperCase() + key.slice(1), key.toLowerCase()];
  return [...new Set(out)].filter((k) => k.length > 0 && !props.includes(k));
}

/** A value of another type than the field's: what a client that guessed the type sends. */
function wrongTyped(value: unknown): unknown[] {
  if (typeof value === 'number') return [String(value), true, [value]];
  if (typeof value === 'string') return [7, false, { value }];
  if (Array.isArray(value)) return ['[]', 1, { 0: value[0] }];
  return ['x', 1, []];
}

type Change = { kind: 'unknown' | 'misspelled' | 'wrong type'; key: string; value: unknown };

const change = (name: UpdateName): fc.Arbitrary<Change> => {
  const { all, optional } = propertiesOf(name);
  const sample = SAMPLES[name];
  const unknown = fc
    .oneof(
      fc.constantFrom('constructor', 'toString', 'valueOf', 'hasOwnProperty', 'reason_', 'sreWitnesses', 'x'),
      fc.stringMatching(/^[a-z][a-zA-Z_]{0,15}$/),
    )
    .filter((k) => !all.includes(k))
    .map((key) => ({ kind: 'unknown' as const, key, value: 1 }));
  const options: fc.Arbitrary<Change>[] = [unknown];
  const named = all.filter((k) => k !== 'auth');
  if (named.length > 0)
    options.push(
      fc
        .constantFrom(...named)
        .chain((k) =>
          fc
            .constantFrom(...misspellings(k, all))
            .map((key) => ({ kind: 'misspelled' as const, key, value: sample[k] ?? 'x' })),
        ),
    );
  const defaulted = optional.filter((k) => k in sample);
  if (defaulted.length > 0)
    options.push(
      fc
        .constantFrom(...defaulted)
        .chain((key) =>
          fc.constantFrom(...wrongTyped(sample[key])).map((value) => ({ kind: 'wrong type' as const, key, value })),
        ),
    );
  return fc.oneof(...options);
};

/** The request with the change (an own property, whatever its name). */
function changed(name: UpdateName, c: Change): Record<string, unknown> {
  const req: Record<string, unknown> = { ...SAMPLES[name] };
  Object.defineProperty(req, c.key, { value: c.value, enumerable: true, writable: true, configurable: true });
  return req;
}

describe('a strict contract, as a property: no request is silently trimmed (issue 23)', function () {
  this.timeout(240_000);

  it('every sample parses by its schema, so a refusal is the change alone', () => {
    for (const name of UPDATES) {
      const r = MESSAGES[name].input!.safeParse(SAMPLES[name]);
      assert.ok(r.success, `${name}: the sample parses (${r.error?.message ?? ''})`);
    }
  });

  it('every update, with an unknown key, a misspelled field or a wrongly typed optional field, is refused naming the key and records nothing', async () => {
    const session = await openSession({ [alpha]: 0.85, [beta]: 0.6 });
    const turnsBefore = (await session.query<{ deltaCount: number }>('auditHead')).deltaCount;
    const seen = new Map<string, Set<Change['kind']>>();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...UPDATES).chain((name) => change(name).map((c) => ({ name, c }))),
        async ({ name, c }) => {
          const failure = await refusal(session.update(name, changed(name, c)));
          assert.equal(failure.type, 'INVALID_INPUT', `${name} ${c.kind} ${c.key}: ${failure.type} ${failure.message}`);
          assert.ok(
            failure.message.includes(c.key.slice(0, 64)),
            `${name} ${c.kind} "${c.key}": the refusal names it: ${failure.message}`,
          );
          (seen.get(name) ?? seen.set(name, new Set()).get(name)!).add(c.kind);
        },
      ),
      { numRuns: 400, seed: Number(process.env.HV_PROPERTY_SEED ?? Date.now() % 2 ** 31) },
    );
    assert.equal(
      (await session.query<{ deltaCount: number }>('auditHead')).deltaCount,
      turnsBefore,
      'nothing recorded',
    );
    for (const name of UPDATES) assert.ok(seen.has(name), `${name} was sent`);
  });

  it('the session input: an unknown key, a misspelled field or a wrongly typed default-bearing config field is refused naming it; a start with one fails naming it', async () => {
    const base = { sessionId: 's', creatorDid: alpha, config: { maxParticipants: 5, minSigmaEff: 0.6 } };
    assert.ok(SessionInputSchema.safeParse(base).success, 'the base input parses');
    const cases: { input: Record<string, unknown>; key: string }[] = [
      { input: { ...base, sreWitnesses: [SRE] }, key: 'sreWitnesses' },
      { input: { ...base, creator_did: alpha }, key: 'creator_did' },
      { input: { ...base, config: { ...base.config, max_participants: 5 } }, key: 'max_participants' },
      { input: { ...base, config: { ...base.config, minSigmaEff: '0.6' } }, key: 'minSigmaEff' },
      { input: { ...base, config: { ...base.config, retentionDays: 'forever' } }, key: 'retentionDays' },
    ];
    for (const { input, key } of cases) {
      const r = SessionInputSchema.safeParse(input);
      assert.ok(!r.success && JSON.stringify(r.error.issues).includes(key), `the schema refuses ${key}`);
    }
    const { client, taskQueue } = await rawClient();
    for (const { input, key } of cases) {
      const sessionId = uid('strict');
      const handle = await client.workflow.start('sessionWorkflow', {
        taskQueue,
        workflowId: sessionWorkflowId(sessionId),
        args: [{ ...input, sessionId }],
      });
      await refused(handle.result(), 'INVALID_INPUT', key);
    }
  });
});
