/**
 * The fenced blocks of a Markdown document, in order, and how a block's info
 * string marks what the docs test does with it:
 *
 *   ```sh                 run it (bash, `set -e`), in the document's working directory
 *   ```sh exit=4          … and it must end with exit code 4 (its first failing command's)
 *   ```sh cwd=clone       … in the clone instead (the block says it runs "from the clone")
 *   ```sh eventually      … again, for up to 20 s, until its output matches (a list read from
 *                         Temporal's visibility store, which the text says is as fresh as that store)
 *   ```sh no-run          not run: the text around it says why (a server in the foreground, Docker, …)
 *   ```ts / ```python     run as a whole program (tsx / the e2e virtualenv's python)
 *   ```python fragment    part of a program shown elsewhere: not run (the text names the whole)
 *   ```yaml file=NAME     a file the examples use: written as NAME into the working directory first
 *   ```text output        the output (stdout and stderr) of the block before it, checked
 *
 * Any other block (a diagram, JSON, a sample without a command) is prose.
 */

export interface Block {
  /** 1-based line of the opening fence. */
  line: number;
  lang: string;
  attrs: Record<string, string | true>;
  body: string;
}

export function fencedBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const [lang = '', ...words] = open[1]!.trim().split(/\s+/);
    const attrs: Record<string, string | true> = {};
    for (const w of words) {
      const eq = w.indexOf('=');
      if (eq < 0) attrs[w] = true;
      else attrs[w.slice(0, eq)] = w.slice(eq + 1);
    }
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && lines[j] !== '```') body.push(lines[j++]!);
    if (j === lines.length) throw new Error(`line ${i + 1}: a fenced block that never closes`);
    blocks.push({ line: i + 1, lang, attrs, body: body.join('\n') + '\n' });
    i = j;
  }
  return blocks;
}

export const RUNNABLE = new Set(['sh', 'ts', 'python']);

/** A block the test runs: a command block or a program, not marked no-run or fragment. */
export function runnable(b: Block): boolean {
  return RUNNABLE.has(b.lang) && !b.attrs['no-run'] && !b.attrs.fragment;
}

/**
 * Columns are padded to their widest cell, and the test's session ids are
 * longer than the docs' (a per-run prefix), so spacing and the length of a
 * table's rule are not compared: runs of spaces count as one, runs of `─` too.
 */
function normalize(line: string): string {
  return line
    .replace(/─+/g, '─')
    .replace(/[ \t]+/g, ' ')
    .trimEnd();
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Does `actual` match the documented `expected` output? In `expected`, `…`
 * stands for any text within a line (a hash, an id, a time), and a line of
 * only `…` for any number of lines. Returns the first line that does not
 * match, or undefined.
 */
export function outputMismatch(expected: string, actual: string): string | undefined {
  const lines = (text: string) =>
    text
      .replace(/^\n+|\n+$/g, '')
      .split('\n')
      .map(normalize);
  const exp = lines(expected);
  const act = lines(actual);
  const patterns = exp.map((l) => (l.trim() === '…' ? null : new RegExp(`^${l.split('…').map(escape).join('.*?')}$`)));
  // Backtracking over the `…` lines; outputs are short.
  const match = (e: number, a: number): boolean => {
    if (e === patterns.length) return a === act.length;
    const p = patterns[e]!;
    if (p === null) {
      for (let k = a; k <= act.length; k++) if (match(e + 1, k)) return true;
      return false;
    }
    return a < act.length && p.test(act[a]!) && match(e + 1, a + 1);
  };
  if (match(0, 0)) return undefined;
  // Name the first line that differs, for the report.
  for (let e = 0, a = 0; e < patterns.length; e++, a++) {
    const p = patterns[e]!;
    if (p === null) return `the output differs after a "…" line (expected line ${e + 1} onwards)`;
    if (a >= act.length) return `expected line ${e + 1} "${exp[e]}", but the output ended`;
    if (!p.test(act[a]!)) return `expected line ${e + 1} "${exp[e]}", got "${act[a]}"`;
  }
  return `the output has more lines than the docs show (from "${act[patterns.length]}")`;
}
