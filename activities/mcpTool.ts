/**
 * One call of an MCP tool for a step or its undo (issue 21). Before anything
 * is called, the worker lists the server's tools — on every call, so a
 * definition changed a moment ago is seen (no cache to invalidate) — and
 * refuses the call when:
 *
 * - the session names a server this worker does not configure;
 * - the tool's definition no longer hashes to the declaration's pin
 *   (ToolDefinitionChanged, naming both hashes);
 * - the declaration is looser than the tool's annotations (read-only for a
 *   tool that is not; reversible for a destructive one);
 * - it would be a retry of a tool not annotated idempotent.
 *
 * The call carries the step's idempotency key in `_meta`, is aborted with
 * the activity (the SDK sends notifications/cancelled), and its answer is
 * mapped onto the step failures of activities/steps.ts: a tool error or a
 * JSON-RPC error is an answer (known not to have acted on a first attempt);
 * no answer (closed, timed out) may have acted.
 */
import { ApplicationFailure } from '@temporalio/common';
import { ErrorCode, McpError, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import {
  effectiveHints,
  loosenings,
  mcpRef,
  MissingUndoArgument,
  toolDefinitionHash,
  undoArguments,
  type ToolDefinition,
} from '../src/core/mcp';
import type { ReversibilityLevel } from '../src/core/reversibility';
import type { ToolDefinitionChange } from '../src/core/toolDefinitions';
import { MCP_REDIRECT, MCP_UNAVAILABLE, type McpClients } from './mcpClients';
import type { StepContext } from './handlers';
import type { ToolPolicy } from './toolPolicy';

/** The failure types of an MCP tool call; MCP_MAY_HAVE_ACTED lists those after which the tool may have acted. */
export const MCP_TOOL_FAILURES = {
  /** The session named a server the worker does not configure (non-retryable, nothing sent). */
  serverNotConfigured: 'McpServerNotConfigured',
  /** The server could not be reached or listed (retryable, the tool not called). */
  unavailable: MCP_UNAVAILABLE,
  /** A Streamable HTTP server answered 3xx while its tools were listed (non-retryable, the tool not called). */
  redirect: MCP_REDIRECT,
  /** The server lists no such tool (non-retryable, nothing called). */
  toolNotFound: 'McpToolNotFound',
  /** The tool's definition differs from the pinned one (non-retryable, nothing called). */
  definitionChanged: 'ToolDefinitionChanged',
  /** The declaration loosens what the tool's annotations say (non-retryable, nothing called). */
  looser: 'McpDeclarationLooser',
  /** A retry of a tool not annotated idempotent (non-retryable; the earlier attempt may have acted). */
  notIdempotent: 'McpToolNotIdempotent',
  /** An undo's mapped argument is missing from the step's input or result (non-retryable, nothing called). */
  undoArgumentMissing: 'McpUndoArgumentMissing',
  /** The tool answered isError: true (non-retryable; it answered, like a 4xx). */
  toolError: 'McpToolError',
  /** The server answered a JSON-RPC error (non-retryable; it answered). */
  rejected: 'McpToolRejected',
  /** No answer: the connection closed or the request timed out (retryable; the tool may have acted). */
  noAnswer: 'McpToolNoAnswer',
  /** The answer passed the worker's size limit (non-retryable; the tool acted). */
  tooLarge: 'McpToolResultTooLarge',
} as const;

export const MCP_MAY_HAVE_ACTED: readonly string[] = [MCP_TOOL_FAILURES.noAnswer, MCP_TOOL_FAILURES.tooLarge];

/** The `_meta` key the step's idempotency key travels under (a server may use it to answer a repeat once). */
export const IDEMPOTENCY_META_KEY = 'dev.agent-hypervisor/idempotency-key';

export interface McpCall {
  api: string;
  phase: 'execute' | 'undo';
  stepId: string;
  actionId: string;
  /** As declared (StepTask): what the annotations must not be looser than. */
  readOnly: boolean;
  reversibility?: ReversibilityLevel;
  input?: unknown;
  result?: unknown;
}

const refuse = (message: string, type: string) => ApplicationFailure.nonRetryable(message, type);

/** Calls the tool `call.api` names; returns `{content, structuredContent?}`. */
export async function callMcpTool(
  call: McpCall,
  ctx: StepContext,
  clients: McpClients,
  policy: ToolPolicy,
): Promise<unknown> {
  const ref = mcpRef(call.api, call.phase === 'undo');
  const what = `step ${call.stepId} (${call.actionId}): MCP tool ${ref.server}/${ref.tool}`;
  if (!clients.has(ref.server))
    throw refuse(
      `${what}: server "${ref.server}" is not one this worker configures (HV_MCP_SERVERS); a session cannot add one`,
      MCP_TOOL_FAILURES.serverNotConfigured,
    );
  const signal = ctx.activity.cancellationSignal;
  let tools;
  try {
    tools = await clients.listTools(ref.server, signal);
  } catch (err) {
    if (err instanceof ApplicationFailure || signal.aborted) throw err; // a policy refusal keeps its type
    throw ApplicationFailure.retryable(
      `${what}: cannot list the server's tools: ${(err as Error).message}`,
      MCP_UNAVAILABLE,
    );
  }
  const def = tools.find((t) => t.name === ref.tool);
  if (!def) throw refuse(`${what}: the server lists no such tool`, MCP_TOOL_FAILURES.toolNotFound);
  const current = toolDefinitionHash(def as ToolDefinition);
  if (current !== ref.pin) {
    const change: ToolDefinitionChange = { tool: `${ref.server}/${ref.tool}`, pinned: ref.pin, current };
    throw ApplicationFailure.create({
      message: `${what}: its definition changed since it was approved (pinned ${ref.pin}, now ${current}); nothing was called — import and declare it again`,
      type: MCP_TOOL_FAILURES.definitionChanged,
      nonRetryable: true,
      details: [change],
    });
  }
  if (call.phase === 'execute') {
    const looser = loosenings(
      { readOnly: call.readOnly, reversibility: call.reversibility ?? 'NONE' },
      def.annotations,
    );
    if (looser.length)
      throw refuse(
        `${what}: the declaration is looser than the tool's annotations: ${looser.join('; ')}`,
        MCP_TOOL_FAILURES.looser,
      );
  }
  if (ctx.attempt > 1 && !effectiveHints(def.annotations).idempotent)
    throw refuse(
      `${what}: attempt ${ctx.attempt} refused: the tool is not annotated idempotentHint: true, so it runs once`,
      MCP_TOOL_FAILURES.notIdempotent,
    );
  let args: Record<string, unknown>;
  try {
    args = call.phase === 'undo' ? undoArguments(ref, call) : inputArguments(call.input);
  } catch (err) {
    if (!(err instanceof MissingUndoArgument)) throw err;
    throw refuse(`${what}: ${err.message}`, MCP_TOOL_FAILURES.undoArgumentMissing);
  }
  const client = await clients.client(ref.server);
  let answer: CallToolResult;
  try {
    answer = (await client.callTool(
      {
        name: ref.tool,
        arguments: args,
        _meta: { [IDEMPOTENCY_META_KEY]: ctx.idempotencyKey },
      },
      undefined,
      // The activity's own timeout governs; the SDK's 60 s default must not end a longer step first.
      { signal, timeout: ctx.activity.info.startToCloseTimeoutMs || 600_000 },
    )) as CallToolResult;
  } catch (err) {
    if (signal.aborted) throw err; // the step's cancellation (heartbeating reports it)
    // The worker's address rule refused the request before it was sent: nothing acted.
    if (err instanceof ApplicationFailure && err.type === 'ToolAddressNotAllowed') throw err;
    if (err instanceof McpError && err.code !== ErrorCode.RequestTimeout && err.code !== ErrorCode.ConnectionClosed)
      throw refuse(`${what} answered error ${err.code}: ${err.message.slice(0, 200)}`, MCP_TOOL_FAILURES.rejected);
    clients.drop(ref.server, client);
    throw ApplicationFailure.retryable(`${what}: no answer: ${(err as Error).message}`, MCP_TOOL_FAILURES.noAnswer);
  }
  if (answer.isError) {
    const text = (answer.content ?? [])
      .map((c) => (c.type === 'text' ? c.text : `[${c.type}]`))
      .join(' ')
      .slice(0, 200);
    throw refuse(`${what} answered an error: ${text}`, MCP_TOOL_FAILURES.toolError);
  }
  const out = {
    content: answer.content ?? [],
    ...(answer.structuredContent !== undefined ? { structuredContent: answer.structuredContent } : {}),
  };
  const bytes = Buffer.byteLength(JSON.stringify(out), 'utf8');
  if (bytes > policy.maxResponseBytes)
    throw refuse(
      `${what} answered ${bytes} bytes; this worker takes at most ${policy.maxResponseBytes} (HV_TOOL_MAX_RESPONSE_BYTES)`,
      MCP_TOOL_FAILURES.tooLarge,
    );
  return out;
}

/** The tool and both hashes a ToolDefinitionChanged failure carries (undefined for any other failure). */
export function definitionChangeOf(err: ApplicationFailure): ToolDefinitionChange | undefined {
  if (err.type !== MCP_TOOL_FAILURES.definitionChanged) return undefined;
  const d = err.details?.[0] as Partial<ToolDefinitionChange> | undefined;
  return d && typeof d.tool === 'string' && typeof d.pinned === 'string' && typeof d.current === 'string'
    ? { tool: d.tool, pinned: d.pinned, current: d.current }
    : undefined;
}

/** An execute's arguments are the step's input: an object (absent: none). */
function inputArguments(input: unknown): Record<string, unknown> {
  if (input === undefined || input === null) return {};
  if (typeof input !== 'object' || Array.isArray(input))
    throw ApplicationFailure.nonRetryable(
      'an MCP tool step needs an object input: it is the tool call arguments',
      'InvalidStep',
    );
  return input as Record<string, unknown>;
}
