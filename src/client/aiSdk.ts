/**
 * The AI SDK adapter (SPEC §13, issue 21, docs/AGENTS.md): `governTools` wraps an AI SDK `ToolSet` so that
 * each tool call a model makes is a step appended to its agent's open turn — gated by the session, approved
 * by other principals when its ring needs it, run by the worker (a registered handler, an HTTP tool, an MCP
 * tool), recorded, and compensated by its declared undo when the turn aborts.
 *
 * The agent's process never runs a governed tool: a tool's own `execute` (an `@ai-sdk/mcp` client's, say) is
 * replaced, so what runs is what the agent declared at join, on the worker. Nor does it approve one: a
 * tool's `needsApproval` is dropped — approvals come from other principals, through the session (SPEC §11).
 *
 * Only types are imported from `ai`: the adapter adds no runtime dependency to the client.
 */
import type { Tool, ToolExecutionOptions, ToolSet } from 'ai';
import { isHypervisorError } from '../core/errors';
import type { SessionHandle } from '.';
import type { RequestSigner } from './keys';
import { TurnHandle, type StepAnswer } from './turns';

export interface GovernOptions {
  /** The session the agent joined. */
  session: SessionHandle;
  /** The agent (its DID) whose calls these are: it appends each step, and signs it in a did:key session. */
  agent: string;
  /** Signs the agent's requests (a did:key session); default: the signer of the session's client. */
  signer?: RequestSigner;
  /** The agent's open turn the calls are appended to; default: a turn opened by the first call. */
  turn?: TurnHandle;
  /** For the turn the first call opens (when `turn` is not given). */
  openTurn?: { description?: string; deadlineSeconds?: number };
  /**
   * The action (declared at join) each tool's call is: by default the tool's name; a map from tool name (a
   * tool it does not name keeps its name), or a function of the tool's name.
   */
  actions?: Record<string, string> | ((toolName: string) => string);
}

/**
 * What the model sees when a governed call does not answer with a result: a refusal at the session's door
 * (`code`: STEP_DENIED with the rule, BUDGET_EXHAUSTED, …) or the step's error (the tool failed, approvers
 * rejected it). Thrown from the tool's `execute`, it is the AI SDK's tool error, which the model reads in its
 * next call: the agent loop goes on and the model may recover.
 */
export class GovernedToolError extends Error {
  override readonly name = 'GovernedToolError';
  constructor(
    message: string,
    readonly toolName: string,
    readonly actionId: string,
    /** The session's code for a refusal; undefined when the step ran and failed (or was rejected). */
    readonly code?: string,
    /** The gate's rule, for a denial (SPEC §1, §12). */
    readonly rule?: string,
    /** The step's answer, when the step was appended. */
    readonly answer?: StepAnswer,
  ) {
    super(message);
  }
}

interface Governor {
  turn: Promise<TurnHandle> | undefined;
  /** Steps arrive one at a time (TURN_BUSY otherwise): the calls of one model step are appended in turn. */
  queue: Promise<unknown>;
}

const governors = new WeakMap<object, Governor>();

/**
 * Wrap `tools` so that each call is a governed step of `agent`'s turn in `session` (see the module's
 * comment). Every other property of a tool (description, input schema, `toModelOutput`) is kept.
 */
export function governTools<T extends ToolSet>(tools: T, options: GovernOptions): T {
  const { agent } = options;
  if (options.turn && options.turn.agentDid !== agent)
    throw new Error(`governTools: the turn ${options.turn.sagaId} is ${options.turn.agentDid}'s, not ${agent}'s`);
  const session = options.signer ? options.session.signedBy(options.signer) : options.session;
  // The turn is reached as `session` (and `signer`) reach it, whoever's client opened it.
  const given = options.turn && new TurnHandle(session, options.turn, options.turn.saga);
  const governor: Governor = { turn: given && Promise.resolve(given), queue: Promise.resolve() };
  const turn = (): Promise<TurnHandle> => {
    if (!governor.turn) {
      const opening = session.openTurn({ agentDid: agent, ...options.openTurn });
      governor.turn = opening;
      opening.catch(() => {
        if (governor.turn === opening) governor.turn = undefined; // the next call tries again
      });
    }
    return governor.turn;
  };

  const governed: Record<string, Tool> = {};
  for (const [toolName, tool] of Object.entries(tools as ToolSet)) {
    if ((tool as { type?: string }).type === 'provider')
      throw new Error(`governTools: ${toolName} is run by the model's provider, out of the hypervisor's reach`);
    const actionId = actionOf(options.actions, toolName);
    const { needsApproval: _ownApproval, ...kept } = tool as Tool;
    const wrapped = {
      ...kept,
      execute: (input: unknown, _call: ToolExecutionOptions) => {
        const call = governor.queue.then(() => appendCall(turn, toolName, actionId, input));
        governor.queue = call.catch(() => undefined);
        return call;
      },
    } as Tool;
    // Defined, not assigned: a tool a server names `__proto__` is a tool, not the set's prototype (SPEC §11.6).
    Object.defineProperty(governed, toolName, { value: wrapped, enumerable: true, writable: true, configurable: true });
  }
  governors.set(governed, governor);
  return governed as T;
}

/** The turn the governed tools append to: the one given, or the one their first call opened (else undefined). */
export function governedTurn(tools: ToolSet): Promise<TurnHandle | undefined> {
  return governors.get(tools)?.turn ?? Promise.resolve(undefined);
}

function actionOf(actions: GovernOptions['actions'], toolName: string): string {
  if (typeof actions === 'function') return actions(toolName);
  return actions && Object.hasOwn(actions, toolName) ? actions[toolName]! : toolName;
}

/** One call: its step appended and answered; a refusal or a failed step is the model's tool error. */
async function appendCall(
  turn: () => Promise<TurnHandle>,
  toolName: string,
  actionId: string,
  input: unknown,
): Promise<unknown> {
  let answer: StepAnswer;
  try {
    answer = await (await turn()).append({ actionId, input: input ?? {} });
  } catch (err) {
    if (!isHypervisorError(err)) throw err;
    const rule = typeof err.details.rule === 'string' ? err.details.rule : undefined;
    throw new GovernedToolError(
      `${toolName} was refused by the hypervisor (${err.code}${rule ? `, rule ${rule}` : ''}): ${err.message}`,
      toolName,
      actionId,
      err.code,
      rule,
    );
  }
  if (answer.ok) return answer.result;
  throw new GovernedToolError(
    `${toolName} (${answer.stepId}) ${answer.state}: ${answer.error ?? 'no result'}`,
    toolName,
    actionId,
    undefined,
    undefined,
    answer,
  );
}
