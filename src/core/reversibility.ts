/**
 * SPEC §2 — reversibility levels, risk weight ω and the per-session
 * reversibility registry. Also the ActionDescriptor shared by rings and joins.
 */
import { z } from 'zod';
import { ownGet, ownSet, parse } from './common';
import { isMcpRef, parseMcpRef } from './mcp';
import { OMEGA, ringRequiredBy } from './ringRules';

// Here since before ringRules.ts (rings.ts re-exports ringRequiredBy as requiredRing).
export { OMEGA, ringRequiredBy } from './ringRules';

export const ReversibilityLevelSchema = z.enum(['FULL', 'PARTIAL', 'NONE']);
export type ReversibilityLevel = z.infer<typeof ReversibilityLevelSchema>;

/** Unknown actions are treated as irreversible. */
export const UNKNOWN_ACTION_OMEGA = OMEGA.NONE.default;

/** Stricter level = less reversible; used when two declarations disagree. */
const STRICTNESS: Record<ReversibilityLevel, number> = { FULL: 0, PARTIAL: 1, NONE: 2 };

/** True when declaration a is stricter than b: a more privileged ring, then a less reversible level. */
function stricter(
  a: { readOnly: boolean; admin: boolean; level: ReversibilityLevel },
  b: { readOnly: boolean; admin: boolean; level: ReversibilityLevel },
): boolean {
  const ra = ringRequiredBy({ ...a, reversibility: a.level });
  const rb = ringRequiredBy({ ...b, reversibility: b.level });
  return ra !== rb ? ra < rb : STRICTNESS[a.level] > STRICTNESS[b.level];
}

/** SPEC §11.6 bounds. */
export const ACTION_ID_MAX = 128;
export const ACTION_TEXT_MAX = 200;
export const HANDLER_NAME_PATTERN = /^[A-Za-z0-9._-]{1,100}$/;
export const TOOL_URL_MAX = 2048;
const ACTION_ID_PATTERN = /^[A-Za-z0-9._:/-]+$/;

/** An action id: 1–128 characters of letters, digits and . _ : / -, not "." or "..". */
export const ActionIdSchema = z
  .string()
  .min(1, 'action id must not be empty')
  .max(ACTION_ID_MAX, `action id must be at most ${ACTION_ID_MAX} characters`)
  .regex(ACTION_ID_PATTERN, 'action id must consist of letters, digits and . _ : / -')
  .refine((id) => id !== '.' && id !== '..', 'action id must not be "." or ".."');

/** True for an http(s) URL of at most 2048 characters. */
function isHttpUrl(s: string): boolean {
  if (s.length > TOOL_URL_MAX) return false;
  try {
    const u = new URL(s);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

/** True for `handler:<name>` (name: 1–100 of letters, digits, . _ -). */
export function isHandlerRef(s: string): boolean {
  return s.startsWith('handler:') && HANDLER_NAME_PATTERN.test(s.slice('handler:'.length));
}

/**
 * How a declared action is run or undone: `handler:<name>`, an http(s) URL, or
 * an MCP tool of a server the worker configures (`mcp:<server>/<tool>#<pin>`,
 * src/core/mcp.ts; an undoApi may map its arguments).
 */
function toolRefSchema(field: 'executeApi' | 'undoApi') {
  return z
    .string()
    .max(TOOL_URL_MAX, `${field} must be at most ${TOOL_URL_MAX} characters`)
    .superRefine((s, ctx) => {
      if (isMcpRef(s)) {
        const ref = parseMcpRef(s, field === 'undoApi');
        if (typeof ref === 'string') ctx.addIssue({ code: 'custom', message: `${field}: ${ref}` });
        return;
      }
      if (!isHandlerRef(s) && !isHttpUrl(s))
        ctx.addIssue({
          code: 'custom',
          message: `${field} must be handler:<name> (name: 1–100 of letters, digits, . _ -), an http(s) URL of at most ${TOOL_URL_MAX} characters, or mcp:<server>/<tool>#<sha256>`,
        });
    });
}

const ActionFields = z.object({
  actionId: ActionIdSchema,
  name: z.string().max(ACTION_TEXT_MAX, `name must be at most ${ACTION_TEXT_MAX} characters`).optional(),
  readOnly: z.boolean().default(false),
  admin: z.boolean().default(false),
  /**
   * When absent: a read-only action is FULL (nothing to undo); anything else is
   * NONE — an undeclared side effect is assumed irreversible.
   */
  reversibility: ReversibilityLevelSchema.optional().describe(
    'Absent: FULL for a readOnly action, else NONE (an undeclared side effect is assumed irreversible, so the action needs ring 1)',
  ),
  executeApi: toolRefSchema('executeApi').optional(),
  undoApi: toolRefSchema('undoApi').optional(),
  undoWindowSeconds: z.number().int().nonnegative().optional(),
  compensationMethod: z
    .string()
    .min(1)
    .max(ACTION_TEXT_MAX, `compensationMethod must be at most ${ACTION_TEXT_MAX} characters`)
    .optional(),
  /** ω; must lie in the level's range. Defaults to the level's default ω. */
  riskWeight: z.number().optional().describe("ω, within its reversibility's range; absent: that level's default ω"),
  /** Cost units one call is expected to cost: what a budget reserves before the step runs (SPEC §12). */
  costUnits: z.number().min(0, 'costUnits must be ≥ 0').max(1e9, 'costUnits must be ≤ 1e9').optional(),
  /** SPEC §14: an operator may skip a failed step of this action (the saga goes on without it). */
  skippable: z.boolean().optional(),
});

export const ActionDescriptorSchema = ActionFields.transform((a) => ({
  ...a,
  reversibility: a.reversibility ?? (a.readOnly ? ('FULL' as const) : ('NONE' as const)),
})).superRefine((a, ctx) => {
  if (a.riskWeight === undefined) return;
  const r = OMEGA[a.reversibility];
  if (!(a.riskWeight >= r.min && a.riskWeight <= r.max)) {
    ctx.addIssue({
      code: 'custom',
      path: ['riskWeight'],
      message: `ω ${a.riskWeight} is outside the ${a.reversibility} range [${r.min}, ${r.max}]`,
    });
  }
});
export type ActionDescriptorInput = z.input<typeof ActionDescriptorSchema>;
export type ActionDescriptor = z.output<typeof ActionDescriptorSchema>;

/** One registry entry. Absent optional values are null so the state is plain JSON. */
export interface ReversibilityEntry {
  actionId: string;
  executeApi: string | null;
  undoApi: string | null;
  level: ReversibilityLevel;
  undoWindowSeconds: number;
  compensationMethod: string | null;
  riskWeight: number;
  undoApiHealthy: boolean;
  /** What decides the ring the action requires (SPEC §1), kept so a gate needs only the registry. */
  readOnly: boolean;
  admin: boolean;
  /** Declared cost units per call (SPEC §12); absent when not declared. */
  costUnits?: number;
  /** SPEC §14: declared skippable by an operator; absent when not declared. */
  skippable?: boolean;
}

export interface ReversibilityRegistry {
  entries: Record<string, ReversibilityEntry>;
  /** Count of NONE entries, so hasNonReversibleActions is O(1). */
  nonReversibleCount: number;
}

export function createReversibilityRegistry(): ReversibilityRegistry {
  return { entries: {}, nonReversibleCount: 0 };
}

/** Default ω of a level. */
export function defaultOmega(level: ReversibilityLevel): number {
  return OMEGA[level].default;
}

/** ω of a descriptor that already passed the schema. */
export function omegaOf(action: ActionDescriptor): number {
  return action.riskWeight ?? OMEGA[action.reversibility].default;
}

/** Validate an action descriptor at the door. */
export function parseAction(input: unknown): ActionDescriptor {
  return parse(ActionDescriptorSchema, input, 'action descriptor');
}

/**
 * Register an action in the session's registry (validated). When the action id
 * is already registered with a stricter declaration (a more privileged required
 * ring, or the same ring and a less reversible level), the stricter entry is
 * kept: a later joiner must not be able to relax the ring an action requires.
 * Otherwise the latest declaration wins.
 */
export function register(registry: ReversibilityRegistry, input: unknown): ReversibilityEntry {
  return registerParsed(registry, parseAction(input));
}

/**
 * The entry the registry would hold for this action after registering it,
 * without changing the registry (the stricter of the existing and the new).
 */
export function previewEntry(registry: ReversibilityRegistry, action: ActionDescriptor): ReversibilityEntry {
  const existing = ownGet(registry.entries, action.actionId);
  if (existing && stricter(existing, { readOnly: action.readOnly, admin: action.admin, level: action.reversibility })) {
    return existing;
  }
  return {
    actionId: action.actionId,
    executeApi: action.executeApi ?? null,
    undoApi: action.undoApi ?? null,
    level: action.reversibility,
    undoWindowSeconds: action.undoWindowSeconds ?? 0,
    compensationMethod: action.compensationMethod ?? null,
    riskWeight: omegaOf(action),
    undoApiHealthy: true,
    readOnly: action.readOnly,
    admin: action.admin,
    // Only when declared: an entry without it hashes as it always did.
    ...(action.costUnits !== undefined ? { costUnits: action.costUnits } : {}),
    ...(action.skippable ? { skippable: true } : {}),
  };
}

/** The fields of a declaration that SPEC §11.8 fixes once an action is declared (what runs, how it is undone, what it weighs and costs). */
export const FIXED_DECLARATION_FIELDS = [
  'executeApi',
  'undoApi',
  'level',
  'undoWindowSeconds',
  'compensationMethod',
  'riskWeight',
  'readOnly',
  'admin',
  'costUnits',
  'skippable',
] as const satisfies readonly (keyof ReversibilityEntry)[];

/** The entry a declaration makes on its own (whatever the registry holds). */
export function entryOf(action: ActionDescriptor): ReversibilityEntry {
  return previewEntry(createReversibilityRegistry(), action);
}

/**
 * SPEC §11.8 (issue 24 N10): the fields in which a declaration differs from
 * the entry an action already has — none when it declares the same thing. A
 * later join may repeat a declaration, never change it: a lower cost, ω or undo
 * window would let it bypass budgets and liability for every agent's steps.
 */
export function declarationDifferences(
  existing: ReversibilityEntry,
  action: ActionDescriptor,
): (typeof FIXED_DECLARATION_FIELDS)[number][] {
  const declared = entryOf(action);
  return FIXED_DECLARATION_FIELDS.filter((k) => (existing[k] ?? null) !== (declared[k] ?? null));
}

/** register() for an already-validated descriptor. */
export function registerParsed(registry: ReversibilityRegistry, action: ActionDescriptor): ReversibilityEntry {
  const existing = ownGet(registry.entries, action.actionId);
  const entry = previewEntry(registry, action);
  if (entry === existing) return existing;
  if (existing?.level === 'NONE') registry.nonReversibleCount--;
  if (entry.level === 'NONE') registry.nonReversibleCount++;
  ownSet(registry.entries, action.actionId, entry);
  return entry;
}

export function lookup(registry: ReversibilityRegistry, actionId: string): ReversibilityEntry | null {
  return ownGet(registry.entries, actionId) ?? null;
}

/** ω of an action; an unknown action weighs as NONE (0.95). */
export function riskWeight(registry: ReversibilityRegistry, actionId: string): number {
  return ownGet(registry.entries, actionId)?.riskWeight ?? UNKNOWN_ACTION_OMEGA;
}

/**
 * The ring an action requires by the session's registry (SPEC §1): from its
 * entry, or 1 for an undeclared action (a write of unknown reversibility is NONE).
 */
export function requiredRingFor(registry: ReversibilityRegistry, actionId: string): 0 | 1 | 2 | 3 {
  const entry = ownGet(registry.entries, actionId);
  return entry ? ringRequiredBy({ readOnly: entry.readOnly, admin: entry.admin, reversibility: entry.level }) : 1;
}

export function hasNonReversibleActions(registry: ReversibilityRegistry): boolean {
  return registry.nonReversibleCount > 0;
}

/** Record the outcome of an undo-API health probe. Returns false for an unknown action. */
export function setUndoApiHealth(registry: ReversibilityRegistry, actionId: string, healthy: boolean): boolean {
  const entry = ownGet(registry.entries, actionId);
  if (!entry) return false;
  entry.undoApiHealthy = healthy;
  return true;
}
