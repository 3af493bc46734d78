/**
 * The rooms' import rules (docs/ARCHITECTURE.md), as ESLint holds them: each
 * forbidden arrow is refused, each allowed one passes — so the lint step in
 * CI can fail for the reason it exists.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { ESLint } from 'eslint';

const root = path.resolve(__dirname, '..', '..');
const eslint = new ESLint({ cwd: root });

async function restricted(file: string, source: string): Promise<string[]> {
  const [result] = await eslint.lintText(source, { filePath: path.join(root, file) });
  return (result?.messages ?? []).filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

describe('rooms: the import rules ESLint holds', function () {
  this.timeout(60_000);
  const cases: [string, string, boolean][] = [
    ['src/core/x.ts', "import * as fs from 'node:fs';", false],
    ['src/core/x.ts', "import { proxyActivities } from '@temporalio/workflow';", false],
    ['src/core/x.ts', "import { MESSAGES } from '../contract/messages';", false],
    ['src/core/x.ts', "import { z } from 'zod';", true],
    ['src/contract/x.ts', "import { Client } from '@temporalio/client';", false],
    ['src/contract/x.ts', "import type { UpdateDefinition } from '@temporalio/common';", true],
    ['src/contract/x.ts', "import { join } from '../core/session';", true],
    ['src/client/x.ts', "import { sagaWorkflow } from '../../workflows/saga';", false],
    ['src/client/x.ts', "import type { SessionWorkflow } from '../contract/workflows';", true],
    ['src/cli/x.ts', "import { definitions } from '../../workflows/definitions';", false],
    ['activities/x.ts', "import { definitions } from '../workflows/definitions';", false],
    ['workflows/session/x.ts', "import * as fs from 'node:fs';", false],
    ['workflows/session/x.ts', "import { HypervisorClient } from '../../src/client';", false],
    ['workflows/session/x.ts', "import { join } from '../../src/core/session';", true],
  ];
  for (const [file, source, allowed] of cases) {
    it(`${file}: ${source} is ${allowed ? 'allowed' : 'refused'}`, async () => {
      const messages = await restricted(
        file,
        `${source}\nexport const used = [${source.match(/\{ (?:type )?(\w+)/)?.[1] ?? source.match(/\* as (\w+)/)?.[1]}];\n`,
      );
      assert.equal(messages.length === 0, allowed, messages.join('; ') || 'no restriction reported');
    });
  }
});
