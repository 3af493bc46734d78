/** `npm run contract`: regenerate contract/*.schema.json from the zod schemas. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { contractFiles, withErrorCodeTable } from '../src/contract/schemas';

const dir = path.resolve(__dirname, '..', 'contract');
fs.mkdirSync(dir, { recursive: true });
const files = contractFiles();
for (const existing of fs.readdirSync(dir))
  if (existing.endsWith('.schema.json') && !(existing in files)) fs.rmSync(path.join(dir, existing));
for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
console.log(`wrote ${Object.keys(files).length} schemas to ${path.relative(process.cwd(), dir)}/`);

const docs = path.resolve(__dirname, '..', 'docs', 'CONTRACT.md');
fs.writeFileSync(docs, withErrorCodeTable(fs.readFileSync(docs, 'utf8')));
console.log('wrote the error-code table of docs/CONTRACT.md');
