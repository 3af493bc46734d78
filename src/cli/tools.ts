/**
 * `hv tools import SERVER`: proposes one action declaration per tool an MCP
 * server lists, from its annotations, each pinned to the hash of the tool's
 * definition (issue 21, docs/MCP.md). Read-only → ring 3, nothing to undo; not
 * destructive with a declared undo → PARTIAL (ring 2); destructive or
 * unannotated → NONE (ring 1). The server is one configured as the worker's
 * are (HV_MCP_SERVERS, or --servers), under the same address rules
 * (HV_TOOL_ALLOW_PRIVATE). It talks to the MCP server only, never to Temporal.
 */
import { stringify } from 'yaml';
import { toolPolicyFromEnv } from '../../activities/toolPolicy';
import {
  effectiveHints,
  MCP_TOOL_NAME_PATTERN,
  parseMcpRef,
  proposeAction,
  toolDefinitionHash,
  type ProposedAction,
  type ToolDefinition,
} from '../core/mcp';
import { ActionDescriptorSchema } from '../core/reversibility';
import { commandHelpHint, didFlag, optionalString, type Command } from './command';
import { CliError, EXIT, UsageError } from './errors';

/** `--undo TOOL=UNDO_TOOL[?arg=path&…]`: the undo each tool declares (another tool of the same server). */
function undoFlags(cmd: Command, raw: unknown): Map<string, string> {
  const list = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
  const out = new Map<string, string>();
  for (const item of list as string[]) {
    const eq = item.indexOf('=');
    const tool = eq === -1 ? '' : item.slice(0, eq);
    if (!MCP_TOOL_NAME_PATTERN.test(tool) || eq === item.length - 1)
      throw new UsageError(
        `--undo must be TOOL=UNDO_TOOL[?arg=path&…], got "${item.slice(0, 200)}"`,
        commandHelpHint(cmd),
      );
    out.set(tool, item.slice(eq + 1));
  }
  return out;
}

/**
 * The MCP client (the MCP SDK, with its JSON Schema validator) is loaded by this command only: every other
 * `hv` command starts without it (about a fifth of the modules hv would load, some 0.1 s per run). A require,
 * not an import(): hv runs its TypeScript through tsx's CommonJS hook (bin/hv.js), which an import() bypasses.
 */
const mcpClients = (): typeof import('../../activities/mcpClients') => require('../../activities/mcpClients');

function configuredServers(
  cmd: Command,
  flag: string | undefined,
  { mcpServersFromEnv }: ReturnType<typeof mcpClients>,
) {
  try {
    return mcpServersFromEnv(flag ?? process.env.HV_MCP_SERVERS, flag === undefined ? 'HV_MCP_SERVERS' : '--servers');
  } catch (err) {
    throw new UsageError((err as Error).message, 'see docs/MCP.md for the format; ' + commandHelpHint(cmd));
  }
}

const importTools: Command = {
  name: 'tools import',
  summary: "propose pinned action declarations for an MCP server's tools, from their annotations",
  args: ['SERVER'],
  usage: 'SERVER [--agent DID] [--undo TOOL=UNDO_TOOL[?arg=path&…]]… [--servers JSON|@FILE]',
  options: { agent: { type: 'string' }, undo: { type: 'string', multiple: true }, servers: { type: 'string' } },
  help: [
    [
      '--agent DID',
      'print an IATP manifest for this agent (for `hv session join --manifest`); else an actions list (--actions)',
    ],
    [
      '--undo TOOL=UNDO[?arg=path&…]',
      "the undo of TOOL: another tool of the server, its arguments read from the step's input or result (repeatable)",
    ],
    ['--servers JSON|@FILE', "the MCP servers, as the worker's HV_MCP_SERVERS (default: $HV_MCP_SERVERS)"],
  ],
  examples: [
    "hv tools import memory --undo 'create_entities=delete_entities?entityNames=input.entities[*].name' > memory-actions.yaml",
    'hv tools import memory --agent did:mesh:alpha > alpha-manifest.yaml',
  ],
  async run(ctx, values, args) {
    const server = args[0];
    if (!server) throw new UsageError('hv tools import needs a SERVER', commandHelpHint(this));
    const agent = values.agent === undefined ? undefined : didFlag(this, values, 'agent');
    const undos = undoFlags(this, values.undo);
    const mcp = mcpClients();
    const servers = configuredServers(this, optionalString(values, 'servers'), mcp);
    if (!servers.has(server))
      throw new UsageError(
        `no MCP server named "${server}" is configured (${servers.size ? `configured: ${[...servers.keys()].join(', ')}` : 'none is'})`,
        'configure it as the worker does: HV_MCP_SERVERS or --servers (docs/MCP.md)',
      );
    const clients = new mcp.McpClients(servers, toolPolicyFromEnv(process.env), 'hv-tools-import');
    let tools: ToolDefinition[];
    try {
      tools = (await clients.listTools(server)) as ToolDefinition[];
    } catch (err) {
      throw new CliError(
        EXIT.UNREACHABLE,
        'MCP_SERVER_UNREACHABLE',
        `cannot list the tools of MCP server "${server}": ${(err as Error).message}`,
        'check the server runs and its entry in HV_MCP_SERVERS',
      );
    } finally {
      await clients.close();
    }
    const byName = new Map(tools.map((t) => [t.name, t]));
    for (const tool of undos.keys())
      if (!byName.has(tool)) throw new UsageError(`--undo names ${tool}, which ${server} does not list`);
    const proposals: ProposedAction[] = [];
    for (const def of tools) {
      if (!MCP_TOOL_NAME_PATTERN.test(def.name)) {
        ctx.note(`skipped ${def.name.slice(0, 140)}: not a tool name a declaration can hold`);
        continue;
      }
      proposals.push(proposeAction(server, def, undoRef(server, undos.get(def.name), byName)));
    }
    // Every proposal is a declaration the session takes as it is; one it would refuse is left out, saying why.
    const actions = [];
    for (const { ring: _r, retries: _x, ...a } of [...proposals]) {
      const checked = ActionDescriptorSchema.safeParse(a);
      if (checked.success) actions.push(a);
      else {
        ctx.note(`skipped ${a.actionId}: ${checked.error.issues.map((i) => i.message).join('; ')}`);
        proposals.splice(
          proposals.findIndex((p) => p.actionId === a.actionId),
          1,
        );
      }
    }
    const out = agent ? { agent_id: agent, trust_level: 'standard', trust_score: 5, actions, scopes: [] } : actions;
    ctx.print(out, () => readable(server, proposals, tools, out, agent !== undefined));
  },
};

/** The pinned undo reference: `UNDO[?args]` of the same server, checked as a declaration checks it. */
function undoRef(server: string, spec: string | undefined, byName: Map<string, ToolDefinition>): string | undefined {
  if (spec === undefined) return undefined;
  const q = spec.indexOf('?');
  const tool = q === -1 ? spec : spec.slice(0, q);
  const def = byName.get(tool);
  if (!def) throw new UsageError(`--undo names ${tool} as an undo, which ${server} does not list`);
  const ref = `mcp:${server}/${spec}#${toolDefinitionHash(def)}`;
  const parsed = parseMcpRef(ref, true);
  if (typeof parsed === 'string') throw new UsageError(`--undo ${spec}: ${parsed}`);
  return ref;
}

function readable(
  server: string,
  proposals: ProposedAction[],
  tools: ToolDefinition[],
  out: unknown,
  manifest: boolean,
): string {
  const lines = [
    `# ${proposals.length} tool(s) of MCP server ${server}, each pinned to its definition's SHA-256.`,
    '# Proposed from the annotations: you may tighten a declaration (readOnly false, a less reversible level),',
    '# never loosen it — the worker refuses a call whose declaration is looser than the tool says.',
  ];
  for (const p of proposals) {
    const h = effectiveHints(tools.find((t) => `${server}.${t.name}` === p.actionId)?.annotations);
    lines.push(
      `#   ${p.actionId}: ring ${p.ring}, ${p.reversibility}${p.undoApi ? ', undo declared' : ''}; ${p.retries ? 'idempotent: retries allowed' : 'not idempotent: one attempt'}` +
        ` (${h.readOnly ? 'read-only' : h.destructive ? 'destructive' : 'not destructive'}${h.openWorld ? ', open world' : ''})`,
    );
  }
  if (manifest) lines.push('# An IATP manifest: set trust_level and trust_score to what you know of the agent.');
  return lines.join('\n') + '\n' + stringify(out, { lineWidth: 0 }).trimEnd();
}

export const toolCommands: Command[] = [importTools];
