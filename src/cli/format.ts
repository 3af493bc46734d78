/** Readable output: aligned tables, σ with three decimals, times, and key–value blocks. */

export type Cell = string | number | boolean | null | undefined;

function text(cell: Cell): string {
  if (cell === null || cell === undefined || cell === '') return '—';
  if (typeof cell === 'boolean') return cell ? 'yes' : 'no';
  return String(cell);
}

/** Display width: code points (σ, —, → are one column each). */
function width(s: string): number {
  return [...s].length;
}

function pad(s: string, w: number, right: boolean): string {
  const fill = ' '.repeat(Math.max(0, w - width(s)));
  return right ? fill + s : s + fill;
}

/**
 * A plain table: a header, a rule, one line per row. Numeric columns are
 * right-aligned. An empty table prints `(none)` under the title instead.
 */
export function table(headers: string[], rows: Cell[][], opts: { indent?: string; maxWidth?: number } = {}): string {
  const indent = opts.indent ?? '  ';
  if (rows.length === 0) return `${indent}(none)`;
  const maxWidth = opts.maxWidth ?? 80;
  const cells = rows.map((r) => headers.map((_, i) => truncate(text(r[i]), maxWidth)));
  const numeric = headers.map(
    (_, i) =>
      rows.some((r) => typeof r[i] === 'number') &&
      rows.every((r) => typeof r[i] === 'number' || r[i] === null || r[i] === undefined),
  );
  const widths = headers.map((h, i) => Math.max(width(h), ...cells.map((r) => width(r[i] as string))));
  const line = (r: string[]) =>
    indent +
    r
      .map((c, i) => pad(c, widths[i] as number, numeric[i] as boolean))
      .join('  ')
      .trimEnd();
  return [line(headers), indent + widths.map((w) => '─'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

export function truncate(s: string, max: number): string {
  const chars = [...s];
  return chars.length <= max ? s : chars.slice(0, max - 1).join('') + '…';
}

/** `key: value` lines with the keys aligned. */
export function fields(pairs: [string, Cell][], indent = ''): string {
  const w = Math.max(...pairs.map(([k]) => width(k)));
  return pairs.map(([k, v]) => `${indent}${pad(k + ':', w + 1, false)} ${text(v)}`).join('\n');
}

export function sigma(x: number | null | undefined): string {
  return typeof x === 'number' ? x.toFixed(3) : '—';
}

export function time(ms: number | null | undefined): string {
  return typeof ms === 'number' ? new Date(ms).toISOString() : '—';
}

export const RING_LABEL: Record<number, string> = { 0: '0 Root', 1: '1 Privileged', 2: '2 Standard', 3: '3 Sandbox' };

export function ring(r: number): string {
  return RING_LABEL[r] ?? String(r);
}

/** Print a section title followed by its body. */
export function section(title: string, body: string): string {
  return `\n${title}\n${body}`;
}
