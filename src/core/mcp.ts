/**
 * MCP tools as an executor kind (issue 21): how a declaration names one, how a
 * tool's definition is pinned, what its annotations propose and forbid, and
 * how an undo's arguments come from the step's input and result. Plain rules:
 * the worker (activities/mcpTool.ts) and `hv tools import` apply them.
 *
 * A reference, in executeApi or undoApi:
 *
 *     mcp:<server>/<tool>#<sha256 of the tool's definition>
 *     mcp:<server>/<tool>?<argument>=<path>&…#<sha256>        (undoApi only)
 *
 * The server is a name the worker's operator configured (HV_MCP_SERVERS); the
 * pin is mandatory, so a declaration always says which definition was approved.
 */
import { canonicalJson } from './canonicalJson';
import { sha256Hex } from './hash';
import { ringRequiredBy } from './ringRules';
import type { ReversibilityLevel } from './reversibility';

export const MCP_PREFIX = 'mcp:';
export const MCP_SERVER_NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/** MCP's recommended tool-name alphabet (letters, digits, _ - .), at most 128. */
export const MCP_TOOL_NAME_PATTERN = /^[A-Za-z0-9_.-]{1,128}$/;
const ARGUMENT_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
/** `input` or `result`, then `.key`, `[n]` or `[*]` (every element) segments. */
const PATH = /^(input|result)((\.[A-Za-z_][A-Za-z0-9_]{0,63})|(\[(\d{1,6}|\*)\]))*$/;
const SEGMENT = /\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+|\*)\]/g;
const PIN = /^[0-9a-f]{64}$/;
const MAX_ARGUMENTS = 16;

/** A parsed `mcp:` reference. */
export interface McpToolRef {
  server: string;
  tool: string;
  /** sha256 hex of the tool's definition (toolDefinitionHash) as it was approved. */
  pin: string;
  /** Undo only: argument name → path into {input, result}. Absent: the step's input is the undo's arguments. */
  arguments?: Record<string, string>;
}

export function isMcpRef(s: string): boolean {
  return s.startsWith(MCP_PREFIX);
}

/**
 * Parses an `mcp:` reference; returns the reason it is not one when malformed.
 * `allowArguments`: an argument mapping is allowed (an undoApi).
 */
export function parseMcpRef(s: string, allowArguments: boolean): McpToolRef | string {
  if (!isMcpRef(s)) return `"${s.slice(0, 40)}" does not start with ${MCP_PREFIX}`;
  const hash = s.lastIndexOf('#');
  if (hash === -1) return 'an MCP tool reference must end with #<sha256 of its definition> (hv tools import prints it)';
  const pin = s.slice(hash + 1);
  if (!PIN.test(pin)) return `the pin after # must be 64 lowercase hex digits (a SHA-256), got "${pin.slice(0, 70)}"`;
  const body = s.slice(MCP_PREFIX.length, hash);
  const q = body.indexOf('?');
  const [name, query] = q === -1 ? [body, undefined] : [body.slice(0, q), body.slice(q + 1)];
  const slash = name.indexOf('/');
  const server = slash === -1 ? '' : name.slice(0, slash);
  const tool = slash === -1 ? '' : name.slice(slash + 1);
  if (!MCP_SERVER_NAME_PATTERN.test(server))
    return `the server name "${server.slice(0, 70)}" must be 1–64 letters, digits, _ or - (mcp:<server>/<tool>#<pin>)`;
  if (!MCP_TOOL_NAME_PATTERN.test(tool))
    return `the tool name "${tool.slice(0, 140)}" must be 1–128 letters, digits, _ - or . (mcp:<server>/<tool>#<pin>)`;
  if (query === undefined) return { server, tool, pin };
  if (!allowArguments) return 'only an undoApi maps arguments (?name=path); an executeApi passes the step input as is';
  const args: Record<string, string> = {};
  const pairs = query.split('&');
  if (pairs.length > MAX_ARGUMENTS) return `at most ${MAX_ARGUMENTS} mapped arguments`;
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const arg = eq === -1 ? pair : pair.slice(0, eq);
    const path = eq === -1 ? '' : pair.slice(eq + 1);
    if (!ARGUMENT_NAME.test(arg)) return `the mapped argument name "${arg.slice(0, 70)}" must be an identifier`;
    if (Object.prototype.hasOwnProperty.call(args, arg)) return `the argument ${arg} is mapped twice`;
    if (!PATH.test(path))
      return `the path "${path.slice(0, 100)}" of argument ${arg} must be input or result followed by .key, [n] or [*] segments`;
    Object.defineProperty(args, arg, { value: path, enumerable: true, writable: true, configurable: true });
  }
  return { server, tool, pin, arguments: args };
}

/** A parsed reference, or an Error naming what is wrong (for the worker, where refs already passed the schema). */
export function mcpRef(s: string, allowArguments: boolean): McpToolRef {
  const ref = parseMcpRef(s, allowArguments);
  if (typeof ref === 'string') throw new Error(`invalid MCP tool reference: ${ref}`);
  return ref;
}

export function formatMcpRef(ref: McpToolRef): string {
  const args = ref.arguments ? Object.entries(ref.arguments) : [];
  const query = args.length ? '?' + args.map(([k, v]) => `${k}=${v}`).join('&') : '';
  return `${MCP_PREFIX}${ref.server}/${ref.tool}${query}#${ref.pin}`;
}

// ── Pinned definitions ──────────────────────────────────────────────────────

/** What MCP says about a tool's behaviour. Untrusted hints unless the server is trusted (the operator configured it). */
export interface ToolAnnotations {
  readOnlyHint?: boolean;
  destructiveHint?: boolean;
  idempotentHint?: boolean;
  openWorldHint?: boolean;
  title?: string;
}

/** The part of a tools/list entry that is pinned. */
export interface ToolDefinition {
  name: string;
  description?: string;
  inputSchema: unknown;
  annotations?: ToolAnnotations & Record<string, unknown>;
}

/** SHA-256 (hex) of the canonical JSON of {name, description, inputSchema, annotations}: what an approval pins. */
export function toolDefinitionHash(def: ToolDefinition): string {
  return sha256Hex(
    canonicalJson({
      name: def.name,
      description: def.description ?? null,
      inputSchema: def.inputSchema ?? null,
      annotations: def.annotations ?? null,
    }),
  );
}

/** The annotations with MCP's defaults for absent hints: not read-only, destructive, not idempotent, open world. */
export function effectiveHints(a: ToolAnnotations | undefined) {
  return {
    readOnly: a?.readOnlyHint === true,
    // destructiveHint and idempotentHint are meaningful only for a tool that is not read-only.
    destructive: a?.readOnlyHint === true ? false : a?.destructiveHint !== false,
    idempotent: a?.readOnlyHint === true ? true : a?.idempotentHint === true,
    openWorld: a?.openWorldHint !== false,
  };
}

/** The declaration one tool's annotations propose (`hv tools import`). */
export interface ProposedAction {
  actionId: string;
  name?: string;
  readOnly: boolean;
  reversibility: ReversibilityLevel;
  executeApi: string;
  undoApi?: string;
  /** The ring the declaration requires (SPEC §1), for the operator's eye. */
  ring: 0 | 1 | 2 | 3;
  /** Whether a saga may retry it (idempotent): otherwise the worker runs one attempt only. */
  retries: boolean;
}

/**
 * Read-only → ring 3, nothing to undo; not destructive with a declared undo →
 * PARTIAL (an undo of a tool's effects is rarely exact; the operator may
 * declare FULL); destructive, unannotated or without an undo → NONE, ring 1.
 */
export function proposeAction(server: string, def: ToolDefinition, undoApi?: string): ProposedAction {
  const h = effectiveHints(def.annotations);
  const reversibility: ReversibilityLevel = h.readOnly ? 'FULL' : !h.destructive && undoApi ? 'PARTIAL' : 'NONE';
  const executeApi = formatMcpRef({ server, tool: def.name, pin: toolDefinitionHash(def) });
  return {
    actionId: `${server}.${def.name}`,
    ...(def.annotations?.title ? { name: String(def.annotations.title).slice(0, 200) } : {}),
    readOnly: h.readOnly,
    reversibility,
    executeApi,
    ...(undoApi && !h.readOnly ? { undoApi } : {}),
    ring: ringRequiredBy({ readOnly: h.readOnly, admin: false, reversibility }),
    retries: h.idempotent,
  };
}

/**
 * Where a declaration is looser than the tool's annotations (empty: it is not):
 * it may tighten what they say, never loosen it. Read-only only when the tool
 * says so; a destructive tool is NONE (ring 1).
 */
export function loosenings(
  declared: { readOnly: boolean; reversibility: ReversibilityLevel; admin?: boolean },
  annotations: ToolAnnotations | undefined,
): string[] {
  const h = effectiveHints(annotations);
  const out: string[] = [];
  if (declared.readOnly && !h.readOnly) out.push('declared readOnly, but the tool is not annotated readOnlyHint: true');
  if (!declared.readOnly && h.destructive && declared.reversibility !== 'NONE')
    out.push(
      `declared ${declared.reversibility}, but the tool is destructive (destructiveHint absent or true): it is NONE, ring 1`,
    );
  return out;
}

// ── Undo arguments ──────────────────────────────────────────────────────────

/** Thrown when a mapped path finds nothing in the step's input or result. */
export class MissingUndoArgument extends Error {}

function walk(value: unknown, segments: string[], path: string): unknown {
  if (segments.length === 0) return value;
  const [seg, ...rest] = segments as [string, ...string[]];
  if (seg === '*') {
    if (!Array.isArray(value)) throw new MissingUndoArgument(`${path}: [*] needs an array`);
    return value.map((v) => walk(v, rest, path));
  }
  const index = /^\d+$/.test(seg);
  if (index ? !Array.isArray(value) : typeof value !== 'object' || value === null || Array.isArray(value))
    throw new MissingUndoArgument(`${path}: nothing at ${seg}`);
  if (!Object.prototype.hasOwnProperty.call(value, seg)) throw new MissingUndoArgument(`${path}: nothing at ${seg}`);
  return walk((value as Record<string, unknown>)[seg], rest, path);
}

/** The undo's arguments: each mapped path read from {input, result}; no mapping, the step's input. */
export function undoArguments(ref: McpToolRef, step: { input?: unknown; result?: unknown }): Record<string, unknown> {
  if (!ref.arguments) {
    const input = step.input ?? {};
    if (typeof input !== 'object' || input === null || Array.isArray(input))
      throw new MissingUndoArgument('the step input is not an object, so it cannot be the undo arguments');
    return input as Record<string, unknown>;
  }
  const out: Record<string, unknown> = {};
  for (const [arg, path] of Object.entries(ref.arguments)) {
    const root = path.startsWith('input') ? step.input : step.result;
    const segments = [...path.slice(path.startsWith('input') ? 5 : 6).matchAll(SEGMENT)].map((m) => m[1] ?? m[2]!);
    Object.defineProperty(out, arg, { value: walk(root, segments, path), enumerable: true, writable: true });
  }
  return out;
}
