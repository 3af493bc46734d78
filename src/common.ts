import { z } from 'zod';
import { HypervisorError } from './errors';

/** Agents are named by DIDs: `did:<method>:<id>`. */
export const DidSchema = z
  .string()
  .regex(/^did:[a-z0-9]+:[A-Za-z0-9._:%-]+$/, 'must be a DID of the form did:<method>:<id>');
export type Did = z.infer<typeof DidSchema>;

/** A trust score σ in [0, 1]. */
export const SigmaSchema = z.number().min(0, 'σ must be ≥ 0').max(1, 'σ must be ≤ 1');

/** Epoch milliseconds. The rules never read a clock: time is always an argument. */
export const TimestampSchema = z.number().int().nonnegative();
export type Timestamp = number;

export const Ring = { ROOT: 0, PRIVILEGED: 1, STANDARD: 2, SANDBOX: 3 } as const;
export type Ring = 0 | 1 | 2 | 3;
export const RingSchema = z.union([z.literal(0), z.literal(1), z.literal(2), z.literal(3)]);
export const RING_NAMES: Record<Ring, string> = { 0: 'Root', 1: 'Privileged', 2: 'Standard', 3: 'Sandbox' };

/**
 * Parse input with a zod schema and turn a failure into an INVALID_INPUT
 * HypervisorError whose message names each offending field.
 */
export function parse<S extends z.ZodType>(schema: S, input: unknown, what: string): z.infer<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
  throw new HypervisorError('INVALID_INPUT', `invalid ${what}: ${problems.join('; ')}`, { issues: problems });
}
