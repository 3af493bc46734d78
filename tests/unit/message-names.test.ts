/**
 * Every message is declared once (issue 19): its name appears as a string literal (comments aside) in at most two
 * production files — the registry declares it as a key, the handler families and the typed client take it from
 * there. Domain values that share a message's spelling (the `witness` a step waits for, the `kill` restriction, the
 * `join` ring cause) are declared once in the core, and read from there.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ts from 'typescript';
import { MESSAGES } from '../../src/contract/messages';

const ROOT = path.resolve(__dirname, '../..');
const ROOMS = ['src', 'workflows', 'activities', 'worker'];

function tsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? tsFiles(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

describe('message names', () => {
  it('appear as a string in at most two production files', () => {
    const names = new Set(Object.keys(MESSAGES));
    const where = new Map<string, Set<string>>();
    for (const file of ROOMS.flatMap((r) => tsFiles(path.join(ROOT, r)))) {
      const scanner = ts.createScanner(
        ts.ScriptTarget.Latest,
        true,
        ts.LanguageVariant.Standard,
        fs.readFileSync(file, 'utf8'),
      );
      for (let k = scanner.scan(); k !== ts.SyntaxKind.EndOfFileToken; k = scanner.scan()) {
        if (k !== ts.SyntaxKind.StringLiteral && k !== ts.SyntaxKind.NoSubstitutionTemplateLiteral) continue;
        const value = scanner.getTokenValue();
        if (names.has(value))
          (where.get(value) ?? where.set(value, new Set()).get(value)!).add(path.relative(ROOT, file));
      }
    }
    const over = [...where]
      .filter(([, files]) => files.size > 2)
      .map(([name, files]) => `${name}: ${[...files].join(', ')}`);
    assert.deepEqual(over, [], 'written in more than two files');
    assert.ok(where.size > 0, 'the scan finds the names it looks for');
  });
});
