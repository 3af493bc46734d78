/**
 * Small modules (issue 19, STYLE.md): no production file over 500 lines, and every workflow function's body
 * (`*Workflow`) within 150 — a capability lands in its room instead of growing one file.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');
const ROOMS = ['src', 'workflows', 'activities', 'worker'];
const MAX_FILE_LINES = 500;
const MAX_WORKFLOW_BODY_LINES = 150;

function tsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? tsFiles(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

describe('room sizes', () => {
  const files = ROOMS.flatMap((r) => tsFiles(path.join(ROOT, r)));

  it(`no production file is over ${MAX_FILE_LINES} lines`, () => {
    const over = files
      .map((f) => [path.relative(ROOT, f), fs.readFileSync(f, 'utf8').split('\n').length - 1] as const)
      .filter(([, lines]) => lines > MAX_FILE_LINES)
      .map(([f, lines]) => `${f}: ${lines}`);
    assert.deepEqual(over, []);
    assert.ok(files.length > 50, 'the scan finds the production files');
  });

  it(`every workflow function's body is at most ${MAX_WORKFLOW_BODY_LINES} lines`, () => {
    const bodies: string[] = [];
    for (const f of files) {
      const lines = fs.readFileSync(f, 'utf8').split('\n');
      lines.forEach((line, i) => {
        if (!/^export async function \w+Workflow\(/.test(line)) return;
        const end = lines.findIndex((l, j) => j > i && l === '}');
        bodies.push(`${path.relative(ROOT, f)}:${i + 1} ${end - i - 1}`);
        assert.ok(end - i - 1 <= MAX_WORKFLOW_BODY_LINES, `${path.relative(ROOT, f)}:${i + 1} is ${end - i - 1} lines`);
      });
    }
    assert.ok(bodies.length >= 2, `the session and saga workflows are found: ${bodies.join(', ')}`);
  });
});
