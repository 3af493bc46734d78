/**
 * did:key identities and signed requests (issue 12; SPEC §11.2 says a message
 * carries no sender, so in a did:key session the sender proves itself).
 *
 * - A did:key names an Ed25519 public key: `did:key:z` + base58btc(0xed 0x01 ‖
 *   the 32-byte key). The DID is the key; nothing is looked up.
 * - A signed request carries `auth`: one entry per signer, each
 *   `{signer, nonce, issuedAt, signature}`. The signer signs the SHA-256 of the
 *   canonical JSON of {update, sessionId, request, nonce, issuedAt} — the
 *   request being the update's argument without `auth` — prefixed with a
 *   context string (docs/CONTRACT.md gives it byte for byte, with a vector).
 *   Signing the hash, not the payload, lets the audit trail keep 64 hex
 *   characters per request and still be checked offline.
 * - The session checks every entry in the update's validator (pure and
 *   synchronous): the signers are exactly the DIDs the request speaks for,
 *   issuedAt is within a window of workflow time, the nonce is fresh for that
 *   DID, the signature verifies. The handler only re-checks the nonce (state)
 *   and remembers it: signature and time were settled at acceptance, and the
 *   workflow clock of a replay may differ from the live one.
 *
 * Pure JavaScript (@noble/curves, @scure/base): runs inside the workflow sandbox.
 */
import { ed25519 } from '@noble/curves/ed25519';
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils';
import { base58 } from '@scure/base';
import { z } from 'zod';
import { DidSchema } from './common';
import { HypervisorError } from './errors';
import { canonicalJson, sha256Hex } from './hash';
import { HASH_PATTERN, NONCE_PATTERN, SIGNATURE_PATTERN, type RequestAuthEntry } from './requestAuth';

// ── did:key ─────────────────────────────────────────────────────────────────

/** The multicodec varint of an Ed25519 public key (0xed, as an unsigned varint). */
const ED25519_PUB = [0xed, 0x01] as const;
/** base58btc of 34 bytes whose first is 0xed is 47 or 48 characters: anything else is refused before decoding. */
const DID_KEY_PATTERN = /^did:key:z[1-9A-HJ-NP-Za-km-z]{44,50}$/;

/** True when `did` has the form of an Ed25519 did:key (its key may still be no curve point: verification says so). */
export function isDidKey(did: unknown): did is string {
  return typeof did === 'string' && DID_KEY_PATTERN.test(did) && publicKeyOf(did) !== undefined;
}

/** The Ed25519 public key a did:key names, or undefined when it names none. Bounded work: the length is checked first. */
export function publicKeyOf(did: string): Uint8Array | undefined {
  if (!DID_KEY_PATTERN.test(did)) return undefined;
  let bytes: Uint8Array;
  try {
    bytes = base58.decode(did.slice('did:key:z'.length));
  } catch {
    return undefined;
  }
  if (bytes.length !== 34 || bytes[0] !== ED25519_PUB[0] || bytes[1] !== ED25519_PUB[1]) return undefined;
  return bytes.slice(2);
}

/** The did:key of an Ed25519 public key. */
export function didKeyOf(publicKey: Uint8Array): string {
  if (publicKey.length !== 32)
    throw new HypervisorError('INVALID_INPUT', `an Ed25519 public key is 32 bytes, got ${publicKey.length}`);
  const bytes = new Uint8Array(34);
  bytes.set(ED25519_PUB, 0);
  bytes.set(publicKey, 2);
  return `did:key:z${base58.encode(bytes)}`;
}

/** An Ed25519 key pair and its DID. `secretKey` is the 32-byte seed (RFC 8032's private key). */
export interface DidKey {
  did: string;
  secretKey: Uint8Array;
  publicKey: Uint8Array;
}

/** The key pair of a 32-byte seed. */
export function didKeyFromSecret(secretKey: Uint8Array): DidKey {
  if (secretKey.length !== 32)
    throw new HypervisorError('INVALID_INPUT', `an Ed25519 secret key is 32 bytes, got ${secretKey.length}`);
  const publicKey = ed25519.getPublicKey(secretKey);
  return { did: didKeyOf(publicKey), secretKey, publicKey };
}

/** A fresh key pair (needs a CSPRNG: Node or a browser, never workflow code). */
export function generateDidKey(): DidKey {
  return didKeyFromSecret(ed25519.utils.randomSecretKey());
}

// ── What is signed ──────────────────────────────────────────────────────────

/** Prefixed to the payload hash: a signature made for this protocol means nothing anywhere else. */
export const SIGNING_CONTEXT = 'agent-hypervisor.request/1:';

/** What a signer signs (through its hash): the request, where it goes, and when. */
export interface SignedPayload {
  /** The update's name (join, approve, …): a signature for one update is not one for another. */
  update: string;
  sessionId: string;
  /** The update's argument as sent, without `auth`. */
  request: unknown;
  nonce: string;
  issuedAt: number;
}

/** The canonical JSON of the payload: sorted keys, no spaces (src/core/canonicalJson.ts). */
export function payloadJson(p: SignedPayload): string {
  return canonicalJson({
    update: p.update,
    sessionId: p.sessionId,
    request: p.request ?? null,
    nonce: p.nonce,
    issuedAt: p.issuedAt,
  });
}

/** The bytes an Ed25519 signature covers: UTF-8 of SIGNING_CONTEXT + the payload hash (hex). */
export function signingInput(payloadHash: string): Uint8Array {
  return utf8ToBytes(SIGNING_CONTEXT + payloadHash);
}

/** Sign a payload hash: the 64-byte Ed25519 signature, as 128 lowercase hex characters. */
export function signPayloadHash(secretKey: Uint8Array, payloadHash: string): string {
  return bytesToHex(ed25519.sign(signingInput(payloadHash), secretKey));
}

/**
 * Whether `signature` (hex) by `did`'s key covers `payloadHash`. Total: any
 * malformed input is false. The work is the same for every input of the
 * accepted shapes (fixed-length signature and message).
 */
export function verifySignature(did: string, payloadHash: string, signature: string): boolean {
  const publicKey = publicKeyOf(did);
  if (!publicKey || !SIGNATURE_PATTERN.test(signature) || !HASH_PATTERN.test(payloadHash)) return false;
  try {
    // RFC 8032's strict rules (not ZIP-215's): one valid encoding per signature, as other verifiers hold it.
    return ed25519.verify(hexToBytes(signature), signingInput(payloadHash), publicKey, { zip215: false });
  } catch {
    return false;
  }
}

// ── Shapes ──────────────────────────────────────────────────────────────────

export { MAX_SIGNERS, RequestAuthEntrySchema, RequestAuthSchema, type RequestAuthEntry } from './requestAuth';

export const SignedPayloadSchema = z.strictObject({
  update: z.string().min(1).max(64),
  sessionId: z.string().min(1).max(256),
  request: z.unknown(),
  nonce: z.string().max(64).regex(NONCE_PATTERN),
  issuedAt: z.number().int().nonnegative(),
});

/**
 * A signature as the audit trail keeps it, inside the delta's hashed fields.
 * `payload` is kept for receipts (approve, reject, witness): small, and what
 * makes an approval checkable offline against the step digest it names.
 */
export const DeltaSignatureSchema = z.strictObject({
  signer: DidSchema,
  signature: z.string().regex(SIGNATURE_PATTERN),
  payloadHash: z.string().regex(HASH_PATTERN),
  payload: SignedPayloadSchema.optional(),
});
export type DeltaSignature = z.infer<typeof DeltaSignatureSchema>;

// ── The session's side ──────────────────────────────────────────────────────

export type IdentityMode = 'none' | 'did:key';

/** How far issuedAt may lie behind workflow time, and ahead of it (clock skew). */
export const ISSUED_AT_MAX_AGE_MS = 5 * 60_000;
export const ISSUED_AT_MAX_AHEAD_MS = 60_000;
/** Nonces remembered per DID: the newest by issuedAt. An older request than all of them is refused as a possible replay. */
export const NONCE_WINDOW = 32;

/**
 * One DID's replay window: the newest NONCE_WINDOW (issuedAt, nonce) pairs,
 * oldest first, and `floor`, the largest issuedAt ever dropped from them. A
 * request at or below the floor cannot be told from a replay and is refused.
 * Plain JSON: it crosses continue-as-new in the session's state.
 */
export interface NonceWindow {
  floor: number;
  seen: [number, string][];
}
/** Per signer DID (client-chosen, so a Map); carried across continue-as-new as a list of entries. */
export type NonceWindows = Map<string, NonceWindow>;

/** Who must sign: every DID in `all`, or exactly one of `anyOf`. */
export type Signers = { all: readonly string[] } | { anyOf: readonly string[] };

export interface AuthContext {
  identity: IdentityMode;
  sessionId: string;
  windows: NonceWindows;
  /** Workflow time, for the issuedAt window; undefined in a handler (settled at acceptance). */
  now?: number;
  /** Checked as did:key because the request is signed in every identity mode (SPEC §11.9), not for the session's mode: refusals say so. */
  everyMode?: boolean;
}

/**
 * The request's `auth` checked against who must sign, in the order a refusal
 * names it: a signer that cannot be a did:key, a missing signature, a signer
 * the request does not speak for, an issuedAt out of the window, a reused
 * nonce, a bad signature. Returns the signatures as the trail keeps them.
 * `raw` is the update's argument as received (what the client signed).
 * With `ctx.now` undefined (a handler) time and signatures are not re-checked.
 */
export function checkAuth(ctx: AuthContext, update: string, raw: unknown, signers: Signers): DeltaSignature[] {
  const auth = authOf(raw);
  const required = 'all' in signers ? [...new Set(signers.all)] : [];
  const allowed = 'all' in signers ? required : [...new Set(signers.anyOf)];
  if (ctx.identity === 'did:key') {
    // A DID the request speaks for that is no did:key could never sign it.
    const notKey = required.find((d) => !isDidKey(d));
    if (notKey !== undefined) {
      throw new HypervisorError(
        'NOT_DID_KEY',
        `cannot ${update}: ${notKey} is not a did:key (Ed25519); ${ctx.everyMode ? `${update} is signed in every identity mode` : `session ${ctx.sessionId} takes only requests signed by did:key DIDs`}`,
        { did: notKey },
      );
    }
    if (auth.length === 0) {
      const who = 'all' in signers ? required.join(', ') : `one of ${allowed.join(', ')}`;
      throw new HypervisorError(
        'SIGNATURE_REQUIRED',
        `cannot ${update}: ${ctx.everyMode ? `${update} is signed in every identity mode` : `session ${ctx.sessionId} takes only signed requests`}; this one must be signed by ${who}`,
        { signers: allowed },
      );
    }
  }
  if (auth.length === 0) return [];
  const seen = new Set<string>();
  for (const a of auth) {
    if (!isDidKey(a.signer))
      throw new HypervisorError('NOT_DID_KEY', `cannot ${update}: signer ${a.signer} is not a did:key (Ed25519)`, {
        did: a.signer,
      });
    if (!allowed.includes(a.signer) || seen.has(a.signer)) {
      throw new HypervisorError(
        'WRONG_SIGNER',
        `cannot ${update}: ${a.signer} ${seen.has(a.signer) ? 'signed twice' : 'does not speak for this request'}; it must be signed by ${'all' in signers ? required.join(', ') : `one of ${allowed.join(', ')}`}`,
        { did: a.signer },
      );
    }
    seen.add(a.signer);
  }
  if ('anyOf' in signers && auth.length !== 1) {
    throw new HypervisorError('WRONG_SIGNER', `cannot ${update}: it is signed by exactly one of ${allowed.join(', ')}`);
  }
  if (ctx.identity === 'did:key' && 'all' in signers) {
    const missing = required.filter((d) => !seen.has(d));
    if (missing.length > 0)
      throw new HypervisorError(
        'SIGNATURE_REQUIRED',
        `cannot ${update}: it must also be signed by ${missing.join(', ')}`,
        { signers: missing },
      );
  }
  const { auth: _, ...request } = raw as Record<string, unknown>;
  const out: DeltaSignature[] = [];
  for (const a of auth) {
    if (
      ctx.now !== undefined &&
      (a.issuedAt < ctx.now - ISSUED_AT_MAX_AGE_MS || a.issuedAt > ctx.now + ISSUED_AT_MAX_AHEAD_MS)
    ) {
      throw new HypervisorError(
        'ISSUED_AT_OUT_OF_WINDOW',
        `cannot ${update}: ${a.signer}'s signature was issued at ${a.issuedAt}, outside session ${ctx.sessionId}'s window (${ISSUED_AT_MAX_AGE_MS / 1000} s before to ${ISSUED_AT_MAX_AHEAD_MS / 1000} s after its time ${ctx.now}); sign it again`,
        { did: a.signer, issuedAt: a.issuedAt, now: ctx.now },
      );
    }
    requireFreshNonce(ctx.windows, update, a);
    const payload: SignedPayload = { update, sessionId: ctx.sessionId, request, nonce: a.nonce, issuedAt: a.issuedAt };
    const payloadHash = sha256Hex(payloadJson(payload));
    if (ctx.now !== undefined && !verifySignature(a.signer, payloadHash, a.signature)) {
      throw new HypervisorError(
        'SIGNATURE_INVALID',
        `cannot ${update}: the signature of ${a.signer} does not verify over this request (payload hash ${payloadHash}); see docs/CONTRACT.md for what is signed`,
        { did: a.signer, payloadHash },
      );
    }
    out.push({
      signer: a.signer,
      signature: a.signature,
      payloadHash,
      ...(RECEIPT_UPDATES.has(update) ? { payload } : {}),
    });
  }
  return out;
}

/** The `auth` entries of a request already parsed by its schema (so well-formed), or none. */
function authOf(raw: unknown): RequestAuthEntry[] {
  const auth = typeof raw === 'object' && raw !== null ? (raw as { auth?: unknown }).auth : undefined;
  return Array.isArray(auth) ? (auth as RequestAuthEntry[]) : [];
}

function requireFreshNonce(windows: NonceWindows, update: string, a: RequestAuthEntry): void {
  const w = windows.get(a.signer);
  if (!w) return;
  if (w.seen.some(([, n]) => n === a.nonce)) {
    throw new HypervisorError(
      'NONCE_REUSED',
      `cannot ${update}: ${a.signer} already used nonce ${a.nonce}; every request needs a fresh one`,
      { did: a.signer, nonce: a.nonce },
    );
  }
  if (a.issuedAt <= w.floor) {
    throw new HypervisorError(
      'NONCE_REUSED',
      `cannot ${update}: ${a.signer}'s request issued at ${a.issuedAt} is older than the ${NONCE_WINDOW} newest it sent (window floor ${w.floor}); it cannot be told from a replay — sign it again`,
      { did: a.signer, floor: w.floor },
    );
  }
}

/** Remember the nonces of an accepted request (the handler's part; re-checks freshness, which concurrent requests may have changed). */
export function acceptNonces(windows: NonceWindows, update: string, raw: unknown): void {
  for (const a of authOf(raw)) {
    requireFreshNonce(windows, update, a);
    let w = windows.get(a.signer);
    if (!w) windows.set(a.signer, (w = { floor: -1, seen: [] }));
    let i = w.seen.length;
    while (i > 0 && (w.seen[i - 1] as [number, string])[0] > a.issuedAt) i--;
    w.seen.splice(i, 0, [a.issuedAt, a.nonce]);
    while (w.seen.length > NONCE_WINDOW) w.floor = Math.max(w.floor, (w.seen.shift() as [number, string])[0]);
  }
}

// ── Receipts ────────────────────────────────────────────────────────────────

type ReceiptRequest = {
  sagaId: string;
  stepId: string;
  digest: string;
  approverDid?: string;
  witnessDid?: string;
  reason?: string;
};

/**
 * The change an approval, rejection or witness records (SPEC §11.5), by the update's name: its path (under the
 * step's) names what was added, its content (hashed) the digest it is bound to.
 */
const RECEIPTS = {
  approve: (r: ReceiptRequest) => ({
    path: `/approvals/${r.approverDid}`,
    content: { digest: r.digest, approverDid: r.approverDid },
  }),
  reject: (r: ReceiptRequest) => ({
    path: '/rejection',
    content: { digest: r.digest, approverDid: r.approverDid, reason: r.reason },
  }),
  witness: (r: ReceiptRequest) => ({ path: '/witness', content: { digest: r.digest, witnessDid: r.witnessDid } }),
};

/** Updates whose signed payload the trail keeps whole: receipts of evidence (SPEC §11.5). */
export const RECEIPT_UPDATES: ReadonlySet<string> = new Set(Object.keys(RECEIPTS));

/**
 * The change a receipt records. The session builds it from the request; an offline verifier rebuilds it from
 * the signed payload the trail keeps, so a receipt is checkable against its digest.
 */
export function receiptChange(
  update: string,
  r: ReceiptRequest,
): { path: string; operation: 'add'; contentHash: string } | undefined {
  if (!Object.hasOwn(RECEIPTS, update)) return undefined;
  const { path, content } = RECEIPTS[update as keyof typeof RECEIPTS](r);
  return {
    path: `/sagas/${r.sagaId}/steps/${r.stepId}${path}`,
    operation: 'add',
    contentHash: sha256Hex(canonicalJson(content)),
  };
}

/** The DID a receipt's request names as its author. */
export function receiptAuthor(request: unknown): string | undefined {
  const r = request as { approverDid?: unknown; witnessDid?: unknown } | null;
  const did = r?.approverDid ?? r?.witnessDid;
  return typeof did === 'string' ? did : undefined;
}

/** The change on turn 1 of a did:key session: tells an offline verifier that every agent's delta must be signed by it. */
export const IDENTITY_CHANGE = {
  path: '/identity',
  operation: 'add' as const,
  contentHash: sha256Hex(canonicalJson('did:key')),
};

/**
 * Check one delta's signatures offline: each by a did:key, over the payload
 * hash it records; a kept payload hashes to it, belongs to this session and,
 * for a receipt, gives exactly the change the delta records. In a did:key
 * trail a delta an agent authored carries that agent's signature. Returns why
 * not, or undefined.
 */
export function deltaSignatureFault(
  d: {
    sessionId: string;
    agentDid: string;
    changes: readonly { path: string; operation: string; contentHash?: string }[];
    signatures?: readonly DeltaSignature[];
  },
  opts: { didKeyTrail: boolean; hypervisorDid: string },
): string | undefined {
  const sigs = d.signatures ?? [];
  for (const s of sigs) {
    if (s.payload !== undefined) {
      if (sha256Hex(payloadJson(s.payload)) !== s.payloadHash)
        return `the payload kept for ${s.signer}'s signature does not hash to ${s.payloadHash}`;
      if (s.payload.sessionId !== d.sessionId)
        return `${s.signer} signed for session ${s.payload.sessionId}, not ${d.sessionId}`;
      const change = receiptChange(s.payload.update, (s.payload.request ?? {}) as never);
      if (change) {
        if (receiptAuthor(s.payload.request) !== s.signer)
          return `${s.signer} signed a ${s.payload.update} in the name of ${String(receiptAuthor(s.payload.request))}`;
        const recorded = d.changes.some(
          (c) => c.path === change.path && c.operation === change.operation && c.contentHash === change.contentHash,
        );
        if (!recorded)
          return `${s.signer}'s signed ${s.payload.update} (${change.path}) is not the change this delta records`;
      }
    }
    if (!verifySignature(s.signer, s.payloadHash, s.signature))
      return `the signature of ${s.signer} does not verify over payload hash ${s.payloadHash}`;
  }
  if (opts.didKeyTrail && d.agentDid !== opts.hypervisorDid && !sigs.some((s) => s.signer === d.agentDid)) {
    return `${d.agentDid} authored this delta of a did:key session without its signature`;
  }
  return undefined;
}
