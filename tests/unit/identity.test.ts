/**
 * did:key identities and signed requests (src/core/identity.ts): the test vector of
 * docs/CONTRACT.md, the session's checks in refusal order, the replay window,
 * and what an offline verifier holds a signed delta to.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { hexToBytes } from '@noble/hashes/utils';
import {
  appendDelta,
  createAuditState,
  deltaHash,
  verifyChain,
  verifyTrail,
  exportTrail,
  type Delta,
} from '../../src/core/audit';
import { isHypervisorError, type ErrorCode } from '../../src/core/errors';
import { sha256Hex } from '../../src/core/hash';
import {
  acceptNonces,
  checkAuth,
  deltaSignatureFault,
  didKeyFromSecret,
  didKeyOf,
  generateDidKey,
  IDENTITY_CHANGE,
  isDidKey,
  NONCE_WINDOW,
  payloadJson,
  publicKeyOf,
  receiptChange,
  signingInput,
  signPayloadHash,
  verifySignature,
  ISSUED_AT_MAX_AGE_MS,
  type AuthContext,
  type DidKey,
  type NonceWindows,
  type Signers,
} from '../../src/core/identity';
import { JoinRequestSchema, ApprovalRequestSchema } from '../../src/contract';

const vector = JSON.parse(fs.readFileSync(path.join(__dirname, '../../contract/vectors/signed-request.json'), 'utf8'));

let nonceCounter = 0;
/** A request signed by `keys` as the typed client signs it. */
function signed(
  keys: DidKey[],
  update: string,
  sessionId: string,
  request: Record<string, unknown>,
  at = 1_000_000,
  nonce?: string,
) {
  const auth = keys.map((k) => {
    const n = nonce ?? `nonce-${String(++nonceCounter).padStart(12, '0')}`;
    const hash = sha256Hex(payloadJson({ update, sessionId, request, nonce: n, issuedAt: at }));
    return { signer: k.did, nonce: n, issuedAt: at, signature: signPayloadHash(k.secretKey, hash) };
  });
  return { ...request, auth };
}

function refusedAs(fn: () => unknown, code: ErrorCode, pattern?: RegExp): void {
  assert.throws(
    fn,
    (err: unknown) => isHypervisorError(err, code) && (!pattern || pattern.test(err.message)),
    `refused as ${code}`,
  );
}

describe('identity: did:key', () => {
  it('names the RFC 8032 TEST 1 key, and decodes back to it', () => {
    const key = didKeyFromSecret(hexToBytes(vector.secretKey));
    assert.equal(
      Buffer.from(key.publicKey).toString('hex'),
      'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    );
    assert.equal(key.did, vector.did);
    assert.match(key.did, /^did:key:z6Mk/, 'every Ed25519 did:key starts z6Mk (0xed 0x01 in base58btc)');
    assert.deepEqual(publicKeyOf(key.did), key.publicKey);
    assert.equal(didKeyOf(key.publicKey), key.did);
  });

  it('refuses what is not an Ed25519 did:key, in bounded work', () => {
    const k = generateDidKey();
    for (const bad of [
      'did:mesh:alpha',
      'did:key:',
      `did:key:${k.did.slice(9)}`,
      k.did.slice(0, -1),
      k.did + 'a',
      `did:key:z${'1'.repeat(47)}`,
      'did:key:z6LSbysY2xFMRpGMhb7tFTLMpeuPRaqaWM1yECx2AtzE3KCc' /* an X25519 did:key */,
      `did:key:z${'z'.repeat(100_000)}`,
      42,
      null,
    ]) {
      assert.equal(isDidKey(bad), false, String(bad).slice(0, 60));
    }
    assert.equal(isDidKey(k.did), true);
  });
});

describe('identity: the signing input (docs/CONTRACT.md test vector)', () => {
  it('holds byte for byte: payload, its hash, the signing input, the signature', () => {
    const p = {
      update: vector.update,
      sessionId: vector.sessionId,
      request: vector.request,
      nonce: vector.nonce,
      issuedAt: vector.issuedAt,
    };
    assert.equal(payloadJson(p), vector.payload);
    assert.equal(sha256Hex(vector.payload), vector.payloadHash);
    assert.equal(Buffer.from(signingInput(vector.payloadHash)).toString('utf8'), vector.signingInput);
    assert.equal(vector.signingInput, vector.context + vector.payloadHash);
    // Ed25519 is deterministic: the same key and input give the same signature.
    assert.equal(signPayloadHash(hexToBytes(vector.secretKey), vector.payloadHash), vector.signature);
    assert.equal(verifySignature(vector.did, vector.payloadHash, vector.signature), true);
  });

  it("the request as sent is accepted by the session's check, and any change to it is not", () => {
    const ctx: AuthContext = {
      identity: 'did:key',
      sessionId: vector.sessionId,
      windows: new Map(),
      now: vector.issuedAt + 1000,
    };
    JoinRequestSchema.parse(vector.sent);
    const [sig] = checkAuth(ctx, 'join', vector.sent, { all: [vector.did] });
    assert.deepEqual(sig, { signer: vector.did, signature: vector.signature, payloadHash: vector.payloadHash });
    for (const [what, sent] of [
      ['another σ', { ...vector.sent, sigmaRaw: 0.86 }],
      ['another update', vector.sent],
    ] as const) {
      refusedAs(
        () => checkAuth(ctx, what === 'another update' ? 'leave' : 'join', sent, { all: [vector.did] }),
        'SIGNATURE_INVALID',
        /does not verify/,
      );
    }
    refusedAs(
      () => checkAuth({ ...ctx, sessionId: 's2' }, 'join', vector.sent, { all: [vector.did] }),
      'SIGNATURE_INVALID',
    );
    const flipped = vector.signature.slice(0, -1) + (vector.signature.endsWith('0') ? '1' : '0');
    assert.equal(verifySignature(vector.did, vector.payloadHash, flipped), false);
  });
});

describe("identity: the session's checks, in refusal order", () => {
  const alpha = generateDidKey();
  const beta = generateDidKey();
  const sre = generateDidKey();
  const now = 1_000_000;
  const ctx = (windows: NonceWindows = new Map(), identity: 'none' | 'did:key' = 'did:key'): AuthContext => ({
    identity,
    sessionId: 's1',
    windows,
    now,
  });
  const req = { agentDid: alpha.did };
  const mine: Signers = { all: [alpha.did] };

  it('a did:key session: a DID that is no did:key, then no signature, then the wrong signer', () => {
    refusedAs(
      () => checkAuth(ctx(), 'leave', { agentDid: 'did:mesh:alpha' }, { all: ['did:mesh:alpha'] }),
      'NOT_DID_KEY',
      /did:mesh:alpha is not a did:key/,
    );
    refusedAs(() => checkAuth(ctx(), 'leave', req, mine), 'SIGNATURE_REQUIRED', new RegExp(`signed by ${alpha.did}`));
    refusedAs(
      () => checkAuth(ctx(), 'leave', signed([beta], 'leave', 's1', req, now), mine),
      'WRONG_SIGNER',
      /does not speak for this request/,
    );
    refusedAs(
      () => checkAuth(ctx(), 'leave', signed([alpha, alpha], 'leave', 's1', req, now), mine),
      'WRONG_SIGNER',
      /signed twice/,
    );
    // A signer claiming alpha's DID with beta's key: the signature does not verify.
    const forged = signed([beta], 'leave', 's1', req, now) as { auth: { signer: string }[] };
    forged.auth[0]!.signer = alpha.did;
    refusedAs(() => checkAuth(ctx(), 'leave', forged, mine), 'SIGNATURE_INVALID');
  });

  it('issuedAt within 5 minutes before and 1 minute after workflow time', () => {
    refusedAs(
      () => checkAuth(ctx(), 'leave', signed([alpha], 'leave', 's1', req, now - ISSUED_AT_MAX_AGE_MS - 1), mine),
      'ISSUED_AT_OUT_OF_WINDOW',
    );
    refusedAs(
      () => checkAuth(ctx(), 'leave', signed([alpha], 'leave', 's1', req, now + 60_001), mine),
      'ISSUED_AT_OUT_OF_WINDOW',
    );
    assert.equal(
      checkAuth(ctx(), 'leave', signed([alpha], 'leave', 's1', req, now - ISSUED_AT_MAX_AGE_MS), mine).length,
      1,
    );
    // A handler (no `now`) does not re-check time: it was settled when the request was accepted.
    assert.equal(
      checkAuth({ ...ctx(), now: undefined }, 'leave', signed([alpha], 'leave', 's1', req, 5), mine).length,
      1,
    );
  });

  it('a nonce counts once per DID; past the window, anything not newer than it is refused', () => {
    const windows: NonceWindows = new Map();
    const first = signed([alpha], 'leave', 's1', req, now);
    checkAuth(ctx(windows), 'leave', first, mine);
    acceptNonces(windows, 'leave', first);
    refusedAs(() => checkAuth(ctx(windows), 'leave', first, mine), 'NONCE_REUSED', /already used nonce/);
    refusedAs(() => acceptNonces(windows, 'leave', first), 'NONCE_REUSED');
    // Another DID's nonces are its own.
    const theirs = signed(
      [beta],
      'leave',
      's1',
      { agentDid: beta.did },
      now,
      (first as { auth: { nonce: string }[] }).auth[0]!.nonce,
    );
    assert.equal(checkAuth(ctx(windows), 'leave', theirs, { all: [beta.did] }).length, 1);
    for (let i = 1; i <= NONCE_WINDOW; i++)
      acceptNonces(windows, 'leave', signed([alpha], 'leave', 's1', req, now + i));
    assert.equal(windows.get(alpha.did)!.seen.length, NONCE_WINDOW, 'the window is bounded');
    assert.equal(windows.get(alpha.did)!.floor, now);
    refusedAs(
      () => checkAuth(ctx(windows), 'leave', signed([alpha], 'leave', 's1', req, now), mine),
      'NONCE_REUSED',
      /cannot be told from a replay/,
    );
    assert.equal(
      checkAuth(ctx(windows), 'leave', signed([alpha], 'leave', 's1', req, now + 1), mine).length,
      1,
      'newer than the floor, fresh nonce',
    );
    assert.deepEqual(
      new Map(JSON.parse(JSON.stringify([...windows]))),
      windows,
      'plain JSON: it crosses continue-as-new (as the list of entries the session carries)',
    );
  });

  it('a saga start is signed by every agent of its steps; activate and terminate by exactly one controller', () => {
    const saga = {
      steps: [
        { actionId: 'a', agentDid: alpha.did },
        { actionId: 'b', agentDid: beta.did },
      ],
    };
    const both: Signers = { all: [alpha.did, beta.did] };
    refusedAs(
      () => checkAuth(ctx(), 'startSaga', signed([alpha], 'startSaga', 's1', saga, now), both),
      'SIGNATURE_REQUIRED',
      new RegExp(`also be signed by ${beta.did}`),
    );
    assert.equal(checkAuth(ctx(), 'startSaga', signed([alpha, beta], 'startSaga', 's1', saga, now), both).length, 2);
    const controllers: Signers = { anyOf: ['did:mesh:admin', sre.did] };
    refusedAs(() => checkAuth(ctx(), 'terminate', {}, controllers), 'SIGNATURE_REQUIRED', /one of did:mesh:admin/);
    refusedAs(
      () => checkAuth(ctx(), 'terminate', signed([alpha], 'terminate', 's1', {}, now), controllers),
      'WRONG_SIGNER',
    );
    assert.equal(checkAuth(ctx(), 'terminate', signed([sre], 'terminate', 's1', {}, now), controllers).length, 1);
  });

  it('an identity "none" session takes unsigned requests, and checks any signature present', () => {
    assert.deepEqual(
      checkAuth(ctx(new Map(), 'none'), 'leave', { agentDid: 'did:mesh:alpha' }, { all: ['did:mesh:alpha'] }),
      [],
    );
    refusedAs(
      () => checkAuth(ctx(new Map(), 'none'), 'leave', signed([beta], 'leave', 's1', req, now), mine),
      'WRONG_SIGNER',
    );
    assert.equal(checkAuth(ctx(new Map(), 'none'), 'leave', signed([alpha], 'leave', 's1', req, now), mine).length, 1);
  });

  it('refuses malformed auth at the schema, with huge values bounded', () => {
    const base = { sagaId: 'g', stepId: 'step-1', digest: 'a'.repeat(64), approverDid: alpha.did };
    const entry = { signer: alpha.did, nonce: 'n'.repeat(16), issuedAt: now, signature: 'a'.repeat(128) };
    for (const auth of [
      [],
      [{ ...entry, signature: 'f'.repeat(10_000_000) }],
      [{ ...entry, nonce: 'x'.repeat(5) }],
      [{ ...entry, nonce: 'é'.repeat(20) }],
      [{ ...entry, issuedAt: -1 }],
      [{ ...entry, extra: 1 }],
      Array(51).fill(entry),
      'nope',
      [{ ...entry, signature: 'A'.repeat(128) }],
    ]) {
      assert.equal(
        ApprovalRequestSchema.safeParse({ ...base, auth }).success,
        false,
        JSON.stringify(auth).slice(0, 80),
      );
    }
    assert.equal(ApprovalRequestSchema.safeParse({ ...base, auth: [entry] }).success, true);
  });
});

describe('identity: signed deltas in the trail', () => {
  const alpha = generateDidKey();
  const now = 1_000_000;

  /** A did:key session's trail: creation, then alpha's signed approval. */
  function trail() {
    const audit = createAuditState('s1');
    appendDelta(audit, {
      deltaId: 'd1',
      sessionId: 's1',
      agentDid: 'did:hv:hypervisor',
      at: now,
      changes: [{ path: '/', operation: 'add', contentHash: 'c' }, IDENTITY_CHANGE],
    });
    const request = { sagaId: 'g1', stepId: 'step-1', digest: 'd'.repeat(64), approverDid: alpha.did };
    const signatures = checkAuth(
      { identity: 'did:key', sessionId: 's1', windows: new Map(), now },
      'approve',
      signed([alpha], 'approve', 's1', request, now),
      { all: [alpha.did] },
    );
    assert.ok(signatures[0]!.payload, 'a receipt keeps its signed payload');
    appendDelta(audit, {
      deltaId: 'd2',
      sessionId: 's1',
      agentDid: alpha.did,
      at: now,
      changes: [receiptChange('approve', request)!],
      signatures,
    });
    return audit;
  }

  it('an unsigned delta hashes as it always did; a signed one covers its signatures', () => {
    const audit = trail();
    const [d1, d2] = audit.deltas as [Delta, Delta];
    assert.equal('signatures' in d1, false);
    assert.equal(verifyChain(audit.deltas).ok, true);
    assert.equal(verifyTrail(JSON.parse(JSON.stringify(exportTrail(audit)))).ok, true);
    const copy = JSON.parse(JSON.stringify(d2)) as Delta;
    delete copy.signatures;
    assert.notEqual(deltaHash(copy), d2.hash, 'the signatures are hashed fields');
  });

  it('an altered signature, payload or receipt fails verification naming the turn; an unsigned agent delta of a did:key trail does too', () => {
    const cases: [string, (d: Delta) => void, RegExp][] = [
      [
        'signature',
        (d) => {
          const s = d.signatures![0]!;
          s.signature = s.signature.slice(0, -2) + (s.signature.endsWith('00') ? '01' : '00');
        },
        /turn 2: the signature of .* does not verify/,
      ],
      [
        'payload',
        (d) => {
          (d.signatures![0]!.payload!.request as { digest: string }).digest = 'e'.repeat(64);
        },
        /turn 2: the payload kept .* does not hash/,
      ],
      [
        'unsigned',
        (d) => {
          delete d.signatures;
        },
        /turn 2: .* authored this delta of a did:key session without its signature/,
      ],
    ];
    for (const [what, edit, reason] of cases) {
      const audit = trail();
      const deltas = JSON.parse(JSON.stringify(audit.deltas)) as Delta[];
      edit(deltas[1]!);
      // Even re-hashed and re-linked (a forger's best effort), the signature check names turn 2.
      deltas[1]!.hash = deltaHash(deltas[1]!);
      const v = verifyChain(deltas);
      assert.equal(v.ok, false, what);
      assert.ok(!v.ok && v.brokenAt === 1 && reason.test(v.reason), `${what}: ${JSON.stringify(v)}`);
    }
  });

  it('a receipt is bound to the change it records: an approval moved to another digest fails', () => {
    const audit = trail();
    const d = JSON.parse(JSON.stringify(audit.deltas[1])) as Delta;
    d.changes[0]!.contentHash = sha256Hex('another digest');
    assert.match(
      deltaSignatureFault(d, { didKeyTrail: true, hypervisorDid: 'did:hv:hypervisor' }) ?? '',
      /is not the change this delta records/,
    );
  });
});
