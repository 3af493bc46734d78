/**
 * The JSON Schemas of every workflow input, update, signal and query argument,
 * and of everything the workflows send back (every query answer, workflow
 * result and update result), derived from the message registry
 * (src/contract/messages.ts). `npm run contract` writes them to contract/; a
 * test fails when the committed files are stale.
 *
 * Files: `<name>.schema.json` for what a client sends, `<query>.answer.schema.json`
 * for a query's answer, `<workflow>.result.schema.json` and `<update>.result.schema.json`
 * for what a workflow or an update returns.
 */
import { z } from 'zod';
import { ERRORS, type ErrorCodeInfo } from '../core/errors';
import { MESSAGES, WORKFLOWS, type Message } from './messages';

type InputKind = 'workflow input' | Message['kind'];

/** Every schema a client sends, by name (workflow inputs, update and signal arguments, query arguments with a file). */
export const INPUTS: Record<string, { kind: InputKind; workflow: string; schema: z.ZodType; description: string }> = Object.fromEntries([
  ...Object.entries(WORKFLOWS).map(([name, w]) => [name, { kind: 'workflow input' as const, workflow: name, schema: w.input, description: w.description }]),
  ...(Object.entries(MESSAGES) as [string, Message][]).filter(([, m]) => m.input)
    .map(([name, m]) => [name, { kind: m.kind, workflow: m.workflow, schema: m.input!, description: m.description }]),
]);

function schemaFile(file: string, title: string, description: string, schema: z.ZodType, io: 'input' | 'output'): string {
  const json = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  return JSON.stringify({ $id: `agent-hypervisor/${file}`, title, description, ...json }, null, 2) + '\n';
}

/** file name → JSON text, exactly as committed under contract/. */
export function contractFiles(): Record<string, string> {
  const files: Record<string, string> = {};
  const add = (file: string, title: string, description: string, schema: z.ZodType, io: 'input' | 'output') => {
    if (file in files) throw new Error(`two contract schemas would be written to ${file}`);
    files[file] = schemaFile(file, title, description, schema, io);
  };
  for (const [name, i] of Object.entries(INPUTS)) {
    const what = i.kind === 'query' ? 'query argument' : i.kind;
    add(`${name}.schema.json`, name, `${what} of ${i.workflow}. ${i.description}`, i.schema, 'input');
  }
  for (const [name, w] of Object.entries(WORKFLOWS)) {
    add(`${name}.result.schema.json`, `${name} result`, `result of ${name}. ${w.outputDescription}`, w.output, 'output');
  }
  for (const [name, m] of Object.entries(MESSAGES) as [string, Message][]) {
    if (!m.output) continue;
    if (m.kind === 'query') add(`${name}.answer.schema.json`, `${name} answer`, `answer of the ${name} query of ${m.workflow}. ${m.description}`, m.output, 'output');
    else add(`${name}.result.schema.json`, `${name} result`, `result of the ${name} update of ${m.workflow}. ${m.outputDescription ?? m.description}`, m.output, 'output');
  }
  return files;
}

/** docs/CONTRACT.md's table of error codes, from the one code table (src/core/errors.ts). */
export function errorCodeTable(): string {
  const cell = (text: string) => text.replace(/\|/g, '\\|');
  const rows = (Object.entries(ERRORS) as [string, ErrorCodeInfo][]).map(([code, e]) =>
    `| \`${code}\` | ${cell(e.means)}${e.retry ? ' (retry later)' : ''} | ${e.details ? cell(e.details) : '—'} | ${cell(e.hint)} |`);
  return ['| code | means | details | what to do |', '|---|---|---|---|', ...rows].join('\n');
}

/** The error-code table placed between its markers in a docs text. */
export function withErrorCodeTable(doc: string): string {
  const start = '<!-- error-codes:start -->';
  const end = '<!-- error-codes:end -->';
  const a = doc.indexOf(start);
  const b = doc.indexOf(end);
  if (a < 0 || b < a) throw new Error(`the docs text has no ${start} … ${end} markers`);
  return `${doc.slice(0, a + start.length)}\n${errorCodeTable()}\n${doc.slice(b)}`;
}
