/**
 * `hv` — the Agent Hypervisor's command line. Sessions, sagas and the audit
 * trail, over the typed client (src/client/index.ts). `hv --help` lists every
 * command, the global flags and the exit codes; docs/CLI.md has examples.
 */
import { parseArgs } from 'node:util';
import { auditCommands } from './audit';
import { commandHelpHint, type Command, type OptionsConfig, type Values } from './command';
import { CliContext, DEFAULT_TIMEOUT_SECONDS, type GlobalValues } from './context';
import { classify, CliError, EXIT, EXIT_CODE_TABLE, UsageError, type ExitCode } from './errors';
import { sagaCommands } from './saga';
import { operatorCommands } from './operator';
import { sessionCommands } from './session';
import { keyCommands } from './keys';
import { agentCommands } from './agent';
import { toolCommands } from './tools';
import { turnCommands } from './turn';
import { approvalsList, sagaList, sessionList } from './lists';
import { useNodeCrypto } from '../node/hashNode';

const GLOBAL_OPTIONS: OptionsConfig = {
  json: { type: 'boolean' },
  address: { type: 'string' },
  namespace: { type: 'string' },
  'task-queue': { type: 'string' },
  timeout: { type: 'string' },
  key: { type: 'string', multiple: true },
  help: { type: 'boolean', short: 'h' },
};

const GLOBAL_HELP: [string, string][] = [
  ['--json', 'print machine-readable JSON only (errors too, as {"error": …})'],
  ['--address HOST:PORT', 'the Temporal frontend (env TEMPORAL_ADDRESS; default 127.0.0.1:7233)'],
  ['--namespace NS', 'the Temporal namespace (env TEMPORAL_NAMESPACE; default "default")'],
  ['--task-queue QUEUE', 'the hypervisor\'s task queue (env HV_TASK_QUEUE; default "agent-hypervisor")'],
  [
    '--timeout SECONDS',
    `how long to wait for Temporal to connect and to answer each call (default ${DEFAULT_TIMEOUT_SECONDS})`,
  ],
  [
    '--key FILE',
    'sign every request with this did:key (`hv keys new`), as each DID it speaks for; repeat for more keys; the first signs activate and terminate',
  ],
  ['-h, --help', 'help; `hv <group> <command> --help` for one command'],
];

const GROUPS: { name: string; title: string; commands: Command[] }[] = [
  { name: 'session', title: 'Sessions', commands: [...sessionCommands, sessionList] },
  { name: 'saga', title: 'Sagas', commands: [...sagaCommands, ...operatorCommands, sagaList] },
  { name: 'approvals', title: 'Approvals (what waits for an operator)', commands: [approvalsList] },
  { name: 'turn', title: "Turns: an agent's open saga (SPEC §13)", commands: turnCommands },
  { name: 'agent', title: 'Agent controls (SPEC §12)', commands: agentCommands },
  { name: 'tools', title: 'MCP tools (docs/MCP.md)', commands: toolCommands },
  { name: 'audit', title: 'Audit', commands: auditCommands },
  { name: 'keys', title: 'Keys (did:key identities)', commands: keyCommands },
];

const ALL_OPTIONS: OptionsConfig = Object.assign(
  {},
  GLOBAL_OPTIONS,
  ...GROUPS.flatMap((g) => g.commands.map((c) => c.options)),
);

function columns(rows: [string, string][], indent = '  '): string {
  const w = Math.max(...rows.map(([a]) => a.length));
  return rows.map(([a, b]) => `${indent}${a.padEnd(w)}  ${b}`).join('\n');
}

function exitCodesHelp(): string {
  return EXIT_CODE_TABLE.map(([code, meaning]) => `  ${code}  ${meaning}`).join('\n');
}

export function globalHelp(): string {
  return [
    "hv — the Agent Hypervisor's command line",
    '',
    'Usage: hv <group> <command> [arguments] [flags]',
    ...GROUPS.flatMap((g) => ['', g.title, columns(g.commands.map((c) => [`hv ${c.name} ${c.usage}`, c.summary]))]),
    '',
    'Global flags (with any command)',
    columns(GLOBAL_HELP),
    '',
    'Exit codes',
    exitCodesHelp(),
    '',
    'The hypervisor must be running: `npm start` starts a local Temporal server and the worker.',
    'More: docs/CLI.md',
  ].join('\n');
}

function groupHelp(group: (typeof GROUPS)[number]): string {
  return [
    `Usage: hv ${group.name} <command> …`,
    '',
    columns(group.commands.map((c) => [`hv ${c.name} ${c.usage}`, c.summary])),
    '',
    `\`hv ${group.name} <command> --help\` for one command; \`hv --help\` for the global flags and exit codes.`,
  ].join('\n');
}

export function commandHelp(cmd: Command): string {
  return [
    `Usage: hv ${cmd.name} ${cmd.usage}`,
    '',
    cmd.summary.charAt(0).toUpperCase() + cmd.summary.slice(1) + '.',
    ...(cmd.help.length ? ['', 'Flags', columns(cmd.help)] : []),
    '',
    'Global flags',
    columns(GLOBAL_HELP),
    ...(cmd.examples?.length ? ['', 'Examples', ...cmd.examples.map((e) => `  ${e}`)] : []),
    '',
    'Exit codes',
    exitCodesHelp(),
  ].join('\n');
}

function timeoutOf(values: GlobalValues): number {
  if (values.timeout === undefined) return DEFAULT_TIMEOUT_SECONDS;
  const t = Number(values.timeout);
  if (!Number.isFinite(t) || t <= 0 || t > 86_400)
    throw new UsageError(`--timeout must be a number of seconds > 0, got "${values.timeout}"`, 'e.g. --timeout 30');
  return t;
}

function report(err: CliError, json: boolean, stdout: NodeJS.WritableStream, stderr: NodeJS.WritableStream): void {
  if (json) {
    stdout.write(
      JSON.stringify(
        {
          error: {
            code: err.code,
            message: err.message,
            hint: err.hint ?? null,
            exitCode: err.exitCode,
            details: err.details,
          },
        },
        null,
        2,
      ) + '\n',
    );
    return;
  }
  const label = err.exitCode === EXIT.USAGE ? 'usage error' : `error ${err.code}`;
  stderr.write(`hv: ${label}: ${err.message}\n`);
  if (err.hint) stderr.write(`  what to do: ${err.hint}\n`);
}

/** Run the CLI with these arguments; resolves to the exit code (it never throws). */
export async function cli(
  argv: string[],
  stdout: NodeJS.WriteStream = process.stdout,
  stderr: NodeJS.WriteStream = process.stderr,
): Promise<ExitCode> {
  let json = argv.includes('--json');
  let ctx: CliContext | undefined;
  try {
    const loose = parseArgs({ args: argv, options: ALL_OPTIONS, strict: false, allowPositionals: true });
    const [groupName, commandName] = loose.positionals;
    const wantsHelp = loose.values.help === true || groupName === 'help';
    if (groupName === 'help' || groupName === undefined) {
      if (groupName === 'help' || wantsHelp) {
        const [, g, c] = loose.positionals;
        const group = GROUPS.find((x) => x.name === g);
        const cmd = group?.commands.find((x) => x.name === `${g} ${c}`);
        stdout.write((cmd ? commandHelp(cmd) : group ? groupHelp(group) : globalHelp()) + '\n');
        return EXIT.OK;
      }
      throw new UsageError('a command is needed', 'run `hv --help` for the commands, e.g. `hv session show SESSION`');
    }
    const group = GROUPS.find((g) => g.name === groupName);
    if (!group) {
      throw new UsageError(
        `unknown command group "${groupName}"; the groups are ${GROUPS.map((g) => g.name).join(', ')}`,
        'run `hv --help`',
      );
    }
    const cmd = group.commands.find((c) => c.name === `${groupName} ${commandName}`);
    if (!cmd) {
      if (wantsHelp) {
        stdout.write(groupHelp(group) + '\n');
        return EXIT.OK;
      }
      throw new UsageError(
        commandName === undefined
          ? `hv ${groupName} needs a command`
          : `unknown command "hv ${groupName} ${commandName}"`,
        `the commands are ${group.commands.map((c) => c.name.split(' ')[1]).join(', ')}; run \`hv ${groupName} --help\``,
      );
    }
    if (wantsHelp) {
      stdout.write(commandHelp(cmd) + '\n');
      return EXIT.OK;
    }
    let parsed: { values: Values; positionals: string[] };
    try {
      parsed = parseArgs({
        args: argv,
        options: { ...GLOBAL_OPTIONS, ...cmd.options },
        strict: true,
        allowPositionals: true,
      }) as typeof parsed;
    } catch (err) {
      throw new UsageError(
        (err as Error).message.replace(/\. To specify a positional argument.*$/s, ''),
        commandHelpHint(cmd),
      );
    }
    const globals = parsed.values as GlobalValues;
    json = Boolean(globals.json);
    const args = parsed.positionals.slice(2);
    // An argument named NAME? is optional (only last ones are).
    const required = cmd.args.filter((a) => !a.endsWith('?'));
    if (args.length < required.length) {
      throw new UsageError(
        `hv ${cmd.name} needs ${required.slice(args.length).join(' ')}`,
        `usage: hv ${cmd.name} ${cmd.usage}`,
      );
    }
    if (args.length > cmd.args.length) {
      throw new UsageError(
        `unexpected argument${args.length - cmd.args.length > 1 ? 's' : ''} ${args
          .slice(cmd.args.length)
          .map((a) => `"${a}"`)
          .join(' ')}`,
        `usage: hv ${cmd.name} ${cmd.usage}`,
      );
    }
    ctx = new CliContext(globals, timeoutOf(globals), stdout, stderr);
    const code = await cmd.run(ctx, parsed.values, args);
    return code ?? EXIT.OK;
  } catch (err) {
    const e = classify(err, ctx?.conn ?? new CliContext({}, DEFAULT_TIMEOUT_SECONDS).conn);
    report(e, json, stdout, stderr);
    return e.exitCode;
  } finally {
    await ctx?.close();
  }
}

/** As a program: run, flush, and exit with the code (even if a stray handle would keep Node alive). */
export function runAsProgram(): void {
  useNodeCrypto(); // trail verification hashes every delta: use node:crypto (src/core/hash.ts)
  void cli(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
    setTimeout(() => process.exit(code), 2000).unref();
  });
}

if (require.main === module) runAsProgram();
