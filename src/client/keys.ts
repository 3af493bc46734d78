/**
 * did:key secret keys on the client's side (issue 12): key files, and the
 * signer the typed client signs each request with. Node only (files, a
 * CSPRNG); the session's side of signing is src/core/identity.ts.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils';
import { z } from 'zod';
import { HypervisorError } from '../core/errors';
import { sha256Hex } from '../core/hash';
import {
  didKeyFromSecret,
  generateDidKey,
  payloadJson,
  signPayloadHash,
  type DidKey,
  type RequestAuthEntry,
} from '../core/identity';
import { messageOf, signersFor } from '../contract/messages';

export const KEY_FILE_FORMAT = 'agent-hypervisor.did-key/1';

const KeyFileSchema = z.strictObject({
  format: z.literal(KEY_FILE_FORMAT),
  did: z.string(),
  publicKey: z.string().regex(/^[0-9a-f]{64}$/),
  /** The 32-byte Ed25519 seed (RFC 8032's private key), hex. */
  secretKey: z.string().regex(/^[0-9a-f]{64}$/),
});

/** The JSON text of a key file. */
export function keyFileText(key: DidKey): string {
  return (
    JSON.stringify(
      {
        format: KEY_FILE_FORMAT,
        did: key.did,
        publicKey: bytesToHex(key.publicKey),
        secretKey: bytesToHex(key.secretKey),
      },
      null,
      2,
    ) + '\n'
  );
}

/** Write a new key to `file`, readable by its owner only (0600); refuses to overwrite. */
export function writeNewKeyFile(file: string): DidKey {
  const key = generateDidKey();
  // 'wx': never replace a key someone may depend on; mode applies at creation, before any byte is written.
  const fd = fs.openSync(file, 'wx', 0o600);
  try {
    fs.writeSync(fd, keyFileText(key));
  } finally {
    fs.closeSync(fd);
  }
  return key;
}

/** Read a key file, checking that its DID is its key's. */
export function readKeyFile(file: string): DidKey {
  let parsed: z.infer<typeof KeyFileSchema>;
  try {
    parsed = KeyFileSchema.parse(JSON.parse(fs.readFileSync(file, 'utf8')));
  } catch (err) {
    throw new HypervisorError(
      'INVALID_INPUT',
      `key file ${file} is not an ${KEY_FILE_FORMAT} key (\`hv keys new\` writes one): ${(err as Error).message.split('\n')[0]}`,
    );
  }
  const key = didKeyFromSecret(hexToBytes(parsed.secretKey));
  if (key.did !== parsed.did || bytesToHex(key.publicKey) !== parsed.publicKey) {
    throw new HypervisorError(
      'INVALID_INPUT',
      `key file ${file}: its did and publicKey are not those of its secretKey`,
    );
  }
  return key;
}

/** What the typed client signs requests with: the DIDs it holds keys for, and a signature over a payload hash. */
export interface RequestSigner {
  readonly dids: readonly string[];
  sign(did: string, payloadHash: string): string;
}

/** A signer holding did:key secret keys in memory. */
export class KeyRing implements RequestSigner {
  private readonly keys = new Map<string, DidKey>();
  constructor(keys: readonly DidKey[] = []) {
    for (const k of keys) this.keys.set(k.did, k);
  }
  static fromFiles(files: readonly string[]): KeyRing {
    return new KeyRing(files.map(readKeyFile));
  }
  get dids(): string[] {
    return [...this.keys.keys()];
  }
  add(key: DidKey): this {
    this.keys.set(key.did, key);
    return this;
  }
  sign(did: string, payloadHash: string): string {
    const key = this.keys.get(did);
    if (!key) throw new HypervisorError('WRONG_SIGNER', `no key for ${did} in this signer`);
    return signPayloadHash(key.secretKey, payloadHash);
  }
}

/**
 * The DIDs this signer signs a request as, by the registry's signer rule for
 * the update (src/contract/messages.ts, the rule the session checks): every
 * DID the rule names that the signer holds a key for; for a rule naming one
 * of several (activate, terminate: the creator or an SRE) and for a bond's
 * voucher (releaseBond), which the client cannot see, `as` (by default the
 * signer's first DID). None for an update nobody signs, or a request its
 * schema refuses (the session refuses it, naming the field).
 */
export function signingDids(signer: RequestSigner, update: string, request: unknown, as?: string): string[] {
  const m = messageOf(update);
  if (!m?.signers || !m.input) return [];
  const parsed = m.input.safeParse(request);
  if (!parsed.success) return [];
  const me = as ?? signer.dids[0];
  const rule = signersFor(update, parsed.data, { controllers: me ? [me] : [], voucherOf: () => me ?? '' });
  if (!rule) return [];
  const held = (d: string) => signer.dids.includes(d);
  return 'all' in rule ? [...new Set(rule.all)].filter(held) : rule.anyOf.filter(held).slice(0, 1);
}

/** A fresh nonce: 16 random bytes, base64url (22 characters). */
export function newNonce(): string {
  return randomBytes(16).toString('base64url');
}

/**
 * The request with `auth`: signed as `signingDids` says (the session refuses
 * what is missing, naming who). The request is signed as it will travel,
 * JSON, so what the session canonicalises is what was signed.
 */
export function signRequest(
  signer: RequestSigner,
  update: string,
  sessionId: string,
  request: unknown,
  as?: string,
  now = Date.now(),
): Record<string, unknown> {
  const plain = (request === undefined || request === null ? {} : JSON.parse(JSON.stringify(request))) as Record<
    string,
    unknown
  >;
  delete plain.auth;
  const wanted = signingDids(signer, update, plain, as);
  if (wanted.length === 0) return plain;
  const auth: RequestAuthEntry[] = wanted.map((did) => {
    const nonce = newNonce();
    const payloadHash = sha256Hex(payloadJson({ update, sessionId, request: plain, nonce, issuedAt: now }));
    return { signer: did, nonce, issuedAt: now, signature: signer.sign(did, payloadHash) };
  });
  return { ...plain, auth };
}
