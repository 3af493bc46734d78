import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { contractFiles, MESSAGES } from '../../src/contractSchemas';
import * as definitions from '../../workflows/definitions';
import * as vfs from '../../workflows/sessionVfs';

describe('contract: the JSON Schemas other SDKs use', () => {
  const dir = path.resolve(__dirname, '..', '..', 'contract');

  it('are up to date with the zod schemas (run `npm run contract` when this fails)', () => {
    const expected = contractFiles();
    const committed = fs.readdirSync(dir).filter((f) => f.endsWith('.schema.json')).sort();
    assert.deepEqual(committed, Object.keys(expected).sort());
    for (const [name, text] of Object.entries(expected)) {
      assert.equal(fs.readFileSync(path.join(dir, name), 'utf8'), text, `contract/${name} is stale`);
    }
  });

  it('cover every update and signal the workflows accept', () => {
    const defined = ([...Object.values(definitions), ...Object.values(vfs)] as unknown[])
      .filter((d): d is { type: string; name: string } => typeof d === 'object' && d !== null && 'type' in d && 'name' in d)
      .filter((d) => d.type === 'update' || d.type === 'signal')
      .map((d) => d.name)
      .sort();
    const documented = Object.entries(MESSAGES).filter(([, m]) => m.kind !== 'workflow input').map(([name]) => name).sort();
    assert.deepEqual(documented, defined);
  });
});
