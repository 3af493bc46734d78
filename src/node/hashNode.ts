/**
 * The node:crypto back-end of sha256Hex (see src/core/hash.ts). Plain Node only:
 * never import this from workflow code — the workflow bundler refuses Node
 * built-ins, and the sandbox has none.
 */
import { createHash, hash } from 'node:crypto';
import { setSha256Backend, type Sha256Backend } from '../core/hash';

/**
 * node:crypto (OpenSSL). `crypto.hash` is the one-shot form of
 * createHash('sha256').update(text).digest('hex'): the same digest without a
 * Hash object per call, which for delta-sized inputs costs more than hashing.
 */
export const nodeSha256: Sha256Backend = {
  name: 'node:crypto',
  hex:
    typeof hash === 'function'
      ? (text) => hash('sha256', text, 'hex')
      : (text) => createHash('sha256').update(text, 'utf8').digest('hex'),
};

/** Make this process's sha256Hex use node:crypto. Call once at a Node entry point. */
export function useNodeCrypto(): void {
  setSha256Backend(nodeSha256);
}
