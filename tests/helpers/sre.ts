/**
 * The SRE witnesses every test session names. An SRE signs its requests
 * (slash, kill, quarantine, release, witness, a revocation) in every identity
 * mode (SPEC §11.9), so they are did:keys — from fixed seeds, so that every
 * process of a run (the tests, `hv` children, the durability harness's
 * clients) knows the same ones.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { KeyRing, keyFileText, signRequest } from '../../src/client/keys';
import { didKeyFromSecret } from '../../src/core/identity';

const fromSeed = (label: string) => didKeyFromSecret(createHash('sha256').update(`hv-test:${label}`).digest());

export const SRE_KEY = fromSeed('sre');
export const SRE_ON_CALL_KEY = fromSeed('sre-on-call');
export const SRE = SRE_KEY.did;
export const SRE_ON_CALL = SRE_ON_CALL_KEY.did;
export const SRE_WITNESSES = [SRE, SRE_ON_CALL];
/** Signs as either SRE: the typed client's signer (`signingDids` picks the DID the request names). */
export const SRE_SIGNER = new KeyRing([SRE_KEY, SRE_ON_CALL_KEY]);

/** The request signed by the SRE it names (as a raw client would send it). */
export function bySre(update: string, sessionId: string, request: unknown): Record<string, unknown> {
  return signRequest(SRE_SIGNER, update, sessionId, request);
}

/** A key file of an SRE (`hv --key FILE`), written once per directory. */
export function sreKeyFile(dir: string, which: 'sre' | 'sre-on-call' = 'sre'): string {
  const file = path.join(dir, `${which}.key`);
  if (!fs.existsSync(file))
    fs.writeFileSync(file, keyFileText(which === 'sre' ? SRE_KEY : SRE_ON_CALL_KEY), { mode: 0o600 });
  return file;
}
