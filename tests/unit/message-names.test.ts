/**
 * Every message is declared once (issue 19): its name appears as a string literal (comments aside) in at most two
 * production files — the registry declares it as a key, the handler families and the typed client take it from
 * there. The exceptions are domain values that share a message's spelling, each named with why.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ts from 'typescript';
import { MESSAGES } from '../../src/contract/messages';

const ROOT = path.resolve(__dirname, '../..');
const ROOMS = ['src', 'workflows', 'activities', 'worker'];

/** Domain values spelt like a message, and where they live. */
const DOMAIN_VALUES: Record<string, string> = {
  witness:
    'a kind of evidence a step waits for (GateWait, waitFor) and a cause of slashing (SlashCause), in recorded state and metric labels',
  kill: 'a kind of restriction (RestrictionKind), in recorded state',
  join: "a cause of a ring assignment (the hv_ring_assignments_total label) and the core's name for the handshake",
};

function tsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? tsFiles(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

describe('message names', () => {
  it('appear as a string in at most two production files, but for the domain values named', () => {
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
      .filter(([name, files]) => files.size > 2 && !Object.hasOwn(DOMAIN_VALUES, name))
      .map(([name, files]) => `${name}: ${[...files].join(', ')}`);
    assert.deepEqual(over, [], 'written in more than two files');
    assert.ok(where.size > 0, 'the scan finds the names it looks for');
  });
});
