import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { contractFiles, withErrorCodeTable } from '../../src/contract/schemas';
import { ERROR_CODES } from '../../src/core/errors';
import { MESSAGES, WORKFLOWS } from '../../src/contract/messages';
import * as definitions from '../../workflows/definitions';

/** Every message the workflow definitions declare: { type: 'update' | 'signal' | 'query', name }. */
const declared = (Object.values(definitions.definitions) as unknown[]).filter(
  (d): d is { type: string; name: string } => typeof d === 'object' && d !== null && 'type' in d && 'name' in d,
);
const namesOf = (type: string) =>
  declared
    .filter((d) => d.type === type)
    .map((d) => d.name)
    .sort();

describe('contract: the JSON Schemas other SDKs use', () => {
  const dir = path.resolve(__dirname, '..', '..', 'contract');

  it('are up to date with the zod schemas (run `npm run contract` when this fails)', () => {
    const expected = contractFiles();
    const committed = fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.schema.json'))
      .sort();
    assert.deepEqual(committed, Object.keys(expected).sort());
    for (const [name, text] of Object.entries(expected)) {
      assert.equal(fs.readFileSync(path.join(dir, name), 'utf8'), text, `contract/${name} is stale`);
    }
  });

  it('cover every update and signal the workflows accept', () => {
    const defined = [...namesOf('update'), ...namesOf('signal')].sort();
    const files = contractFiles();
    assert.deepEqual(
      defined.filter((name) => !(`${name}.schema.json` in files)),
      [],
    );
  });

  it('describe the answer of every query the workflows answer', () => {
    const queries = namesOf('query');
    assert.ok(
      queries.includes('summary') && queries.includes('vfsList') && queries.includes('sagaState'),
      `queries found: ${queries.join(', ')}`,
    );
    assert.deepEqual(
      Object.entries(MESSAGES)
        .filter(([, m]) => m.kind === 'query' && m.output)
        .map(([n]) => n)
        .sort(),
      queries,
    );
    const files = contractFiles();
    for (const q of queries)
      assert.ok(`${q}.answer.schema.json` in files, `contract/${q}.answer.schema.json is missing`);
  });

  it('describe the result of both workflows and of every update', () => {
    assert.deepEqual(Object.keys(WORKFLOWS).sort(), [definitions.SAGA_WORKFLOW, definitions.SESSION_WORKFLOW].sort());
    const files = contractFiles();
    for (const name of [...Object.keys(WORKFLOWS), ...namesOf('update')])
      assert.ok(`${name}.result.schema.json` in files, `contract/${name}.result.schema.json is missing`);
  });

  it('write answers as outputs: every field a workflow always sends is required', () => {
    const summary = JSON.parse(contractFiles()['summary.answer.schema.json']!) as {
      required: string[];
      additionalProperties: boolean;
    };
    assert.equal(summary.additionalProperties, false);
    assert.ok(summary.required.includes('commitment') && summary.required.includes('sagas'));
    // A query's argument keeps its own file next to its answer.
    assert.equal((JSON.parse(contractFiles()['stepGrant.schema.json']!) as { title: string }).title, 'stepGrant');
  });

  it("docs/CONTRACT.md's error-code table is current and names every code (npm run contract)", () => {
    const doc = fs.readFileSync(path.resolve(__dirname, '..', '..', 'docs', 'CONTRACT.md'), 'utf8');
    assert.equal(doc, withErrorCodeTable(doc), "docs/CONTRACT.md's error-code table is stale: run npm run contract");
    for (const code of ERROR_CODES) assert.ok(doc.includes(`| \`${code}\` |`), `${code} is in the table`);
  });
});
