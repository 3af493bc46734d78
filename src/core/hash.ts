/**
 * SHA-256 for the audit trail, behind one seam.
 *
 * `sha256Hex(text)` is SHA-256 of the UTF-8 encoding of `text`, as 64
 * lowercase hex characters. Which library computes it is chosen per process:
 *
 * - By default, @noble/hashes (audited, pure JS). This is what workflows get:
 *   everything bundled from workflows/ imports only this module, and Temporal's
 *   workflow sandbox has no Node built-ins (its bundler refuses `node:crypto`).
 * - A plain Node process (worker, activities, CLI, client, audit store, bench)
 *   calls `useNodeCrypto()` from '../node/hashNode' once at its entry point, which
 *   switches this module to node:crypto (OpenSSL, with the CPU's SHA
 *   instructions where it has them). The workflow bundle holds its own copy of
 *   this module, in its own V8 context, so a switch made in the worker's Node
 *   context never reaches workflow code, and cannot make it nondeterministic.
 *
 * Both give the same digests (tests/unit/hash.test.ts checks them against each
 * other and the NIST vectors), so the choice changes speed, never a hash.
 * Lone surrogates, which have no UTF-8 encoding, are encoded as U+FFFD by both.
 */
import { sha256 } from '@noble/hashes/sha2';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils';

export { canonicalJson, jsonString } from './canonicalJson';

/** A SHA-256 implementation: UTF-8 text in, 64 lowercase hex characters out. */
export interface Sha256Backend {
  readonly name: string;
  readonly hex: (text: string) => string;
}

/** @noble/hashes: runs anywhere, the workflow sandbox included. */
export const nobleSha256: Sha256Backend = {
  name: '@noble/hashes',
  hex: (text) => bytesToHex(sha256(utf8ToBytes(text))),
};

let current: Sha256Backend = nobleSha256;
let hex = nobleSha256.hex;

/** SHA-256 of the UTF-8 encoding of `text`, as 64 lowercase hex characters. */
export function sha256Hex(text: string): string {
  return hex(text);
}

/** Make `backend` compute every sha256Hex in this JS context from now on. */
export function setSha256Backend(backend: Sha256Backend): void {
  current = backend;
  hex = backend.hex;
}

/** The backend sha256Hex uses in this JS context. */
export function sha256Backend(): Sha256Backend {
  return current;
}
