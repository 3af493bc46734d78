/** The shape of a command, and the helpers commands use to read flags, arguments and input files. */
import * as fs from 'node:fs';
import type { ParseArgsConfig } from 'node:util';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import type { CliContext } from './context';
import { UsageError, type ExitCode } from './errors';

export type OptionsConfig = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, string | boolean | undefined>;

export interface Command {
  /** `session create` */
  name: string;
  summary: string;
  /** Positional argument names, in order, e.g. ['SESSION', 'FILE']. */
  args: string[];
  /** The usage line after `hv <name>`. */
  usage: string;
  options: OptionsConfig;
  /** Option lines for --help: [flag, description]. */
  help: [string, string][];
  examples?: string[];
  run(ctx: CliContext, values: Values, args: string[]): Promise<ExitCode | void>;
}

export function commandHelpHint(cmd: Pick<Command, 'name'>): string {
  return `run \`hv ${cmd.name} --help\` for its usage`;
}

/** A required string flag. */
export function required(cmd: Command, values: Values, flag: string): string {
  const v = values[flag];
  if (typeof v !== 'string' || v === '') throw new UsageError(`hv ${cmd.name} needs --${flag}`, commandHelpHint(cmd));
  return v;
}

export function optionalString(values: Values, flag: string): string | undefined {
  const v = values[flag];
  return typeof v === 'string' ? v : undefined;
}

/** A number flag within [min, max]; integers when asked. */
export function numberFlag(
  cmd: Command,
  values: Values,
  flag: string,
  opts: { min: number; max: number; integer?: boolean },
): number | undefined {
  const raw = values[flag];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (
    typeof raw !== 'string' ||
    raw.trim() === '' ||
    !Number.isFinite(n) ||
    n < opts.min ||
    n > opts.max ||
    (opts.integer && !Number.isInteger(n))
  ) {
    throw new UsageError(
      `--${flag} must be ${opts.integer ? 'an integer' : 'a number'} from ${opts.min} to ${opts.max}, got "${String(raw)}"`,
      commandHelpHint(cmd),
    );
  }
  return n;
}

const DID = /^did:[a-z0-9]+:[A-Za-z0-9._:%-]+$/;

export function didFlag(cmd: Command, values: Values, flag: string): string {
  const v = required(cmd, values, flag);
  if (!DID.test(v))
    throw new UsageError(`--${flag} must be a DID of the form did:<method>:<id>, got "${v}"`, commandHelpHint(cmd));
  return v;
}

/** Parse JSON or YAML text (YAML is a superset of JSON). */
export function parseJsonOrYaml(textIn: string, where: string): unknown {
  try {
    return parseYaml(textIn, { prettyErrors: true });
  } catch (err) {
    throw new UsageError(
      `${where} is neither valid JSON nor valid YAML: ${(err as Error).message.split('\n')[0]}`,
      'fix the file (JSON or YAML)',
    );
  }
}

export function readFileText(file: string, what: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(
      `cannot read ${what} ${file}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
      'check the path',
    );
  }
}

/** A flag that is either inline JSON (starting with [ or {) or the path of a JSON/YAML file. */
export function jsonOrFile(value: string, what: string): unknown {
  const t = value.trim();
  if (t.startsWith('[') || t.startsWith('{')) {
    try {
      return JSON.parse(t);
    } catch (err) {
      throw new UsageError(
        `${what} is not valid JSON: ${(err as Error).message}`,
        'pass inline JSON or the path of a JSON/YAML file',
      );
    }
  }
  return parseJsonOrYaml(readFileText(value, what), `${what} ${value}`);
}

/** Validate what the user gave against a contract schema before anything is sent: a usage error names each field. */
export function validate<S extends z.ZodType>(schema: S, input: unknown, what: string, hint: string): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
  throw new UsageError(`invalid ${what}: ${problems.join('; ')}`, hint);
}
