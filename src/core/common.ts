import { z } from 'zod';
import { HypervisorError } from './errors';

const DID_PATTERN = /^did:[a-z0-9]+:[A-Za-z0-9._:%-]+$/;
/** SPEC §11.6: every string in a request is bounded. */
export const DID_MAX_LENGTH = 256;

/** Agents are named by DIDs: `did:<method>:<id>` (at most 256 characters). */
export const DidSchema = z
  .string()
  .max(DID_MAX_LENGTH, `must be at most ${DID_MAX_LENGTH} characters`)
  .regex(DID_PATTERN, 'must be a DID of the form did:<method>:<id>');
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

/** zod's options for every parse in this JS context: a saga run's ask for no compiled parser (parseWithoutCompiling). */
export let parseContext: { jitless: true } | undefined;

/**
 * From now on, in this JS context (a saga run: workflows/index.ts), zod compiles no parser (new Function) for an
 * object schema on its first parse: the run builds its schemas afresh and parses each once or twice.
 */
export function parseWithoutCompiling(): void {
  parseContext = { jitless: true };
}

/**
 * Parse input with a zod schema and turn a failure into an INVALID_INPUT
 * HypervisorError whose message names each offending field.
 */
export function parse<S extends z.ZodType>(schema: S, input: unknown, what: string): z.infer<S> {
  const result = schema.safeParse(input, parseContext);
  if (result.success) return result.data;
  // Bounded, whatever the input: a refusal names the fields, it never echoes the request (a key or a value may be megabytes).
  const issues = result.error.issues;
  const problems = issues
    .slice(0, MAX_ISSUES_NAMED)
    .map(
      (i) => `${i.path.length ? i.path.map((p) => clip(String(p), 64)).join('.') : '(root)'}: ${clip(i.message, 200)}`,
    );
  if (issues.length > MAX_ISSUES_NAMED) problems.push(`and ${issues.length - MAX_ISSUES_NAMED} more`);
  throw new HypervisorError('INVALID_INPUT', `invalid ${clip(what, 64)}: ${problems.join('; ')}`, { issues: problems });
}

const MAX_ISSUES_NAMED = 8;
/** At most `max` characters of `s`, saying how many were left out. */
export function clip(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max)}… (${s.length - max} more characters)`;
}

// ── Prototype-safe records (SPEC §11.6) ──────────────────────────────────────
//
// State is plain JSON (it crosses continue-as-new), so records keyed by
// client-chosen strings (action ids, paths, snapshot/bond/session ids, DIDs)
// are plain objects. Indexing one directly lets `constructor`/`toString`
// resolve to Object.prototype members and `rec['__proto__'] = v` replace the
// record's prototype — and, in a worker's shared V8 context, reach other
// workflows. These helpers see own properties only and write `__proto__` as
// an ordinary own key (JSON.stringify/parse and spread keep it as one).

/** The record's own value for `key`, never an inherited member. */
export function ownGet<T>(rec: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(rec, key) ? rec[key] : undefined;
}

/** True when `key` is the record's own property. */
export function ownHas(rec: Readonly<Record<string, unknown>>, key: string): boolean {
  return Object.hasOwn(rec, key);
}

/** Set an own, enumerable, writable, configurable property (`__proto__` included). */
export function ownSet<T>(rec: Record<string, T>, key: string, value: T): T {
  if (key === '__proto__') {
    Object.defineProperty(rec, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    // No other Object.prototype member is an accessor: assignment makes an own data property.
    rec[key] = value;
  }
  return value;
}

/** The own value for `key`, created by `make` (and set) when absent. */
export function ownGetOrSet<T>(rec: Record<string, T>, key: string, make: () => T): T {
  return Object.hasOwn(rec, key) ? (rec[key] as T) : ownSet(rec, key, make());
}

/** Delete an own property; an inherited member is left alone. Returns whether one was deleted. */
export function ownDelete(rec: Record<string, unknown>, key: string): boolean {
  if (!Object.hasOwn(rec, key)) return false;
  delete rec[key];
  return true;
}

// ── Fast accept paths ───────────────────────────────────────────────────────
//
// zod costs about a microsecond per object parsed. A fast path is a second
// validator to keep in step with zod, so one exists only where a figure of
// bench/core.ts needs it (without it a SPEC §10 workload would no longer beat
// the original, or the geometric mean of the speed-ups would fall below 3×;
// the bench measures each switched off and says so): delta capture
// (fastDeltaInput: delta_capture, the Merkle and chain workloads) and session
// create and join (fastCreateSessionInput, fastJoinInput: session_lifecycle).
// Vouch, saga and commitment inputs are parsed by zod alone.
//
// Such a door first tries a hand-written check that accepts only plainly valid
// input and builds exactly what the schema would return; anything else — every
// invalid input included — goes on to parse(), so every error message is zod's.
// The checks below are therefore strict subsets of the schemas' rules: when in
// doubt they answer "not sure" (undefined/false), never "valid". Each fast
// path is property-tested against its schema (tests/unit/fastpath.test.ts).

/**
 * Which fast accept paths are in use: all of them, always. bench/core.ts alone
 * switches one off at a time, to measure the figure that needs it.
 */
export const fastPaths = {
  createSession: true,
  join: true,
  delta: true,
};
export type FastPath = keyof typeof fastPaths;

/** What zod's object schemas accept: a non-null, non-array object. */
export function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/**
 * True when every enumerable key of `x` (inherited ones too, as zod's strict
 * objects see them) is one of `known` — so a strict schema has no unknown key to reject.
 */
export function hasOnlyKeys(x: object, known: ReadonlySet<string>): boolean {
  for (const key in x) if (!known.has(key)) return false;
  return true;
}

/** DidSchema accepts it. */
export function isDid(x: unknown): x is Did {
  return typeof x === 'string' && x.length <= DID_MAX_LENGTH && DID_PATTERN.test(x);
}

/** SigmaSchema accepts it. */
export function isSigma(x: unknown): x is number {
  return typeof x === 'number' && x >= 0 && x <= 1;
}

/** TimestampSchema accepts it (zod's int() is a safe integer). */
export function isTimestamp(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

/** z.string().min(1).max(max) accepts it. */
export function isNonEmptyString(x: unknown, max = Infinity): x is string {
  return typeof x === 'string' && x.length >= 1 && x.length <= max;
}

/** parse(TimestampSchema, …) without zod's cost for a valid timestamp. */
export function parseTimestamp(x: unknown, what: string): Timestamp {
  return isTimestamp(x) ? x : parse(TimestampSchema, x, what);
}

/** parse(DidSchema, …) without zod's cost for a valid DID. */
export function parseDid(x: unknown, what: string): Did {
  return isDid(x) ? x : parse(DidSchema, x, what);
}
