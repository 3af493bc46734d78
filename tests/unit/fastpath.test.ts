/**
 * The hot paths that duplicate a validated or general one must agree with it:
 * - deltaJson (the delta's canonical JSON, written field by field) with canonicalJson;
 * - every fast accept path with its zod schema: whenever the fast path
 *   answers, zod accepts the same input and returns an equal value (same keys,
 *   same order); otherwise zod decides (and words the error).
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { z } from 'zod';
import { canonicalJson, sha256Hex } from '../../src/core/hash';
import { DeltaInputSchema, deltaHash, deltaJson, fastDeltaInput, type Delta } from '../../src/core/audit';
import {
  DidSchema,
  SigmaSchema,
  TimestampSchema,
  isDid,
  isNonEmptyString,
  isSigma,
  isTimestamp,
} from '../../src/core/common';
import { CreateSessionInputSchema, fastCreateSessionInput } from '../../src/core/session';
import { JoinInputSchema, fastJoinInput } from '../../src/core/join';

describe('fast path: the delta hash writes canonical JSON by hand', () => {
  const text = fc.oneof(
    fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 40 }),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 10 }),
  );
  const change = fc.record(
    {
      path: text,
      operation: fc.constantFrom('add', 'modify', 'delete', 'permission'),
      contentHash: text,
      previousHash: text,
      agentDid: text,
    },
    { requiredKeys: ['path', 'operation', 'agentDid'] },
  );
  const num = fc.oneof(fc.integer(), fc.double(), fc.constantFrom(NaN, Infinity, -0));

  it('equals sha256Hex of the canonical JSON for well-formed deltas (ASCII or not)', () => {
    fc.assert(
      fc.property(
        text,
        text,
        text,
        num,
        num,
        fc.array(change, { maxLength: 4 }),
        fc.option(text, { nil: null }),
        (deltaId, sessionId, agentDid, at, turn, changes, parentHash) => {
          const d = { deltaId, turn, sessionId, agentDid, at, changes, parentHash, hash: '' } as Delta;
          const { hash: _h, ...fields } = d;
          assert.equal(deltaJson(d), canonicalJson(fields));
          assert.equal(deltaHash(d), sha256Hex(canonicalJson(fields)));
        },
      ),
      { numRuns: 1000 },
    );
  });
});

// ── Fast accept paths against their schemas ─────────────────────────────────

/** Values that probe the schemas' edges: wrong types, boundaries, non-finite numbers. */
const edgy = fc.oneof(
  fc.constantFrom(
    undefined,
    null,
    true,
    false,
    '',
    'x',
    'a'.repeat(256),
    'a'.repeat(257),
    'did:example:a',
    'did:Web:x',
    'did:x',
    'add',
    'EVENTUAL',
  ),
  fc.constantFrom(
    0,
    -0,
    1,
    -1,
    0.5,
    0.6,
    1.0000001,
    2,
    300,
    1.5,
    NaN,
    Infinity,
    -Infinity,
    2 ** 53,
    2 ** 53 - 1,
    1_700_000_000_000,
  ),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 5 }),
  fc.constant([]),
  fc.constant({}),
);
/** Mostly a good value, sometimes an edgy one. */
const field = <T>(good: fc.Arbitrary<T>) => fc.oneof({ weight: 5, arbitrary: good }, { weight: 2, arbitrary: edgy });
/** A record of those fields, often with every key, sometimes with some absent or an extra key. */
function objects(fields: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<unknown> {
  const rec = fc.record(fields, { requiredKeys: [] });
  return fc.oneof(
    { weight: 6, arbitrary: fc.record(fields) },
    { weight: 4, arbitrary: rec },
    {
      weight: 2,
      arbitrary: fc.tuple(rec, fc.constantFrom('extra', 'hash'), edgy).map(([r, k, v]) => ({ ...r, [k]: v })),
    },
    { weight: 1, arbitrary: edgy },
  );
}

const did = fc.constantFrom('did:example:agent-1', 'did:mesh:bob', 'did:web:x.y:%20');
const id = fc.oneof(fc.constantFrom('s1', 'session-1', 'a'.repeat(256)), fc.string({ minLength: 1, maxLength: 8 }));
const sigma = fc.oneof(fc.constantFrom(0, 1, 0.6, 0.8), fc.double({ min: 0, max: 1, noNaN: true }));
const timestamp = fc.oneof(fc.constantFrom(0, 1_700_000_000_000), fc.nat());
const posInt = fc.integer({ min: 1, max: 100_000 });

/** Keys of an object, recursively, in order: equal JSON would not see undefined-valued keys. */
function shape(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(shape);
  if (v !== null && typeof v === 'object') return Object.entries(v).map(([k, x]) => [k, shape(x)]);
  return typeof v === 'number' && Object.is(v, -0) ? '-0' : v;
}

function agrees<S extends z.ZodType>(
  name: string,
  schema: S,
  fast: (input: unknown) => unknown,
  inputs: fc.Arbitrary<unknown>,
  typical: unknown[],
) {
  it(`${name}: whenever it answers, zod accepts and returns the same value`, () => {
    let answered = 0;
    fc.assert(
      fc.property(inputs, (input) => {
        const mine = fast(input);
        if (mine === undefined) return;
        answered++;
        const theirs = schema.safeParse(input);
        assert.ok(theirs.success, `fast path accepted what zod rejects: ${JSON.stringify(input)}`);
        assert.deepStrictEqual(mine, theirs.data);
        assert.deepStrictEqual(shape(mine), shape(theirs.data));
      }),
      { numRuns: 3000 },
    );
    assert.ok(answered > 50, `the fast path answered only ${answered} times`);
    for (const input of typical)
      assert.notEqual(fast(input), undefined, `typical input refused: ${JSON.stringify(input)}`);
  });
}

describe('fast path: accept paths agree with their zod schemas', () => {
  const changeInput = objects({
    path: field(fc.constantFrom('/sessions/s1/a.txt', 'x')),
    operation: field(fc.constantFrom('add', 'modify', 'delete', 'permission')),
    contentHash: field(id),
    previousHash: field(id),
    agentDid: field(did),
  });
  agrees(
    'fastDeltaInput',
    DeltaInputSchema,
    fastDeltaInput,
    objects({
      deltaId: field(id),
      sessionId: field(id),
      agentDid: field(did),
      at: field(timestamp),
      changes: field(fc.array(changeInput, { maxLength: 3 })),
    }),
    [
      {
        deltaId: 'd1',
        sessionId: 's1',
        agentDid: 'did:example:agent-1',
        at: 1,
        changes: [{ path: '/p', operation: 'add', contentHash: 'h' }],
      },
    ],
  );

  const config = objects({
    consistency: field(fc.constantFrom('EVENTUAL', 'STRONG')),
    maxParticipants: field(posInt),
    maxDurationSeconds: field(posInt),
    minSigmaEff: field(sigma),
    auditEnabled: field(fc.boolean()),
    externalCommitment: field(fc.boolean()),
    consensusQuorum: field(fc.integer({ min: 0, max: 11 })),
    sreWitnesses: field(
      fc.oneof(
        fc.array(did, { maxLength: 3 }),
        fc.array(fc.oneof(did, edgy), { maxLength: 17 }),
        fc.constant([undefined, 'did:example:a']),
      ),
    ),
    allowedToolOrigins: field(
      fc.oneof(
        fc.array(fc.constantFrom('http://127.0.0.1:8080', 'https://tools.example', 'http://[::1]:9000'), {
          maxLength: 3,
        }),
        fc.array(
          fc.constantFrom(
            'http://h/',
            'HTTP://H',
            'ftp://h',
            'http://h:80',
            'x',
            'https://' + 'h'.repeat(200),
            'http://127.0.0.1:8080',
          ),
          { maxLength: 17 },
        ),
      ),
    ),
  });
  agrees(
    'fastCreateSessionInput',
    CreateSessionInputSchema,
    fastCreateSessionInput,
    objects({ sessionId: field(id), config: field(config) }),
    [
      { sessionId: 's1' },
      { sessionId: 's1', config: { maxParticipants: 3 } },
      {
        sessionId: 's1',
        config: { consensusQuorum: 3, sreWitnesses: ['did:mesh:sre'], allowedToolOrigins: ['http://127.0.0.1:8080'] },
      },
    ],
  );

  agrees(
    'fastJoinInput',
    JoinInputSchema,
    fastJoinInput,
    objects({
      agentDid: field(did),
      sigmaRaw: field(sigma),
      scoredSigma: field(sigma),
      actions: fc.constantFrom(undefined, []),
      manifest: fc.constant(undefined),
      history: fc.constant(undefined),
    }),
    [{ agentDid: 'did:example:agent-1', sigmaRaw: 0.8 }],
  );

  it('the scalar checks agree with DidSchema, SigmaSchema, TimestampSchema and z.string().min(1)', () => {
    const check = (pred: (x: unknown) => boolean, schema: z.ZodType, x: unknown) => {
      if (pred(x)) assert.ok(schema.safeParse(x).success, `accepted ${String(x)}`);
    };
    fc.assert(
      fc.property(fc.oneof(edgy, did, sigma, timestamp, fc.anything()), (x) => {
        check(isDid, DidSchema, x);
        check(isSigma, SigmaSchema, x);
        check(isTimestamp, TimestampSchema, x);
        check((v) => isNonEmptyString(v, 256), DeltaInputSchema.shape.deltaId, x);
        // and the other way round, for the scalars (no defaults or transforms involved)
        assert.equal(isDid(x), DidSchema.safeParse(x).success);
        assert.equal(isSigma(x), SigmaSchema.safeParse(x).success);
        assert.equal(isTimestamp(x), TimestampSchema.safeParse(x).success);
      }),
      { numRuns: 3000 },
    );
  });
});
