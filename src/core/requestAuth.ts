/**
 * The `auth` field of a signed request, as a schema only (issue 12): zod and
 * nothing else, so the requests about sagas and turns (src/core/sagaRequests.ts,
 * src/contract/turns.ts) carry it without building the curve code. What it means and how it is
 * checked: src/core/identity.ts.
 */
import { z } from 'zod';
import { DidSchema } from './common';

export const SIGNATURE_PATTERN = /^[0-9a-f]{128}$/;
export const HASH_PATTERN = /^[0-9a-f]{64}$/;
export const NONCE_PATTERN = /^[A-Za-z0-9_-]{16,64}$/;
/** At most one signer per step of the largest saga (SAGA_MAX_STEPS). */
export const MAX_SIGNERS = 50;

/** One signer's proof on a request. */
export const RequestAuthEntrySchema = z.strictObject({
  signer: DidSchema,
  nonce: z
    .string()
    .max(64)
    .regex(NONCE_PATTERN, 'must be 16–64 characters of A–Z a–z 0–9 _ - (fresh for every request)'),
  issuedAt: z
    .number()
    .int()
    .nonnegative()
    .max(Number.MAX_SAFE_INTEGER)
    .describe('epoch milliseconds when the request was signed'),
  signature: z.string().max(128).regex(SIGNATURE_PATTERN, 'must be an Ed25519 signature: 128 lowercase hex characters'),
});
export type RequestAuthEntry = z.infer<typeof RequestAuthEntrySchema>;

/** The `auth` field every agent request may carry (and must, in a did:key session). */
export const RequestAuthSchema = z
  .array(RequestAuthEntrySchema)
  .min(1)
  .max(MAX_SIGNERS)
  .describe(
    'Signatures of the request, one per signer (docs/CONTRACT.md, "Signed requests"). Required in a did:key session.',
  );

/** Signatures of an agent request: required in a did:key session, checked whenever present. */
export const auth = RequestAuthSchema.optional();
