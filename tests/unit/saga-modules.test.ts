import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * A saga is a short run, and the reusable V8 context evaluates its modules afresh for every run
 * (workflows/index.ts): each module of zod schemas it imports is built again per saga, on its first workflow
 * task (issue 20 measured module evaluation at ~9.5 ms of it). These modules serve the session, the worker or
 * clients, not a saga; a saga reaching one of them by a value import would build them again on every run.
 */
const NOT_A_SAGAS = [
  'src/core/reversibility.ts', // action declarations (a join's), not the views a saga is started with
  'src/core/session.ts', // the session's config and state
  'src/core/mcpServers.ts', // the worker's HV_MCP_SERVERS
  'src/contract/sagaOutcome.ts', // the outcome's schemas, which its session and clients parse with
  'src/contract/messages.ts', // the message registry
];

const root = path.resolve(__dirname, '../..');

/** The modules a file imports for their values (not `import type`, not all-`type` named imports), resolved. */
function valueImports(file: string): string[] {
  const source = fs.readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of source.matchAll(/^(?:import|export)\s+(type\s+)?([^'";]*?)\s*(?:from\s+)?'([^']+)';/gms)) {
    const [, typeOnly, clause, spec] = m;
    if (typeOnly || !spec!.startsWith('.')) continue;
    const names = /^\{([^}]*)\}$/.exec(clause!.trim())?.[1];
    if (names !== undefined && names.split(',').every((n) => n.trim() === '' || n.trim().startsWith('type '))) continue;
    const base = path.resolve(path.dirname(file), spec!);
    const resolved = [`${base}.ts`, path.join(base, 'index.ts')].find((f) => fs.existsSync(f));
    if (resolved) out.push(resolved);
  }
  return out;
}

/** Each module reachable from `entry` by value imports, with the chain that first reaches it. */
function reachable(entry: string): Map<string, string[]> {
  const chains = new Map<string, string[]>([[entry, [entry]]]);
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.shift()!;
    for (const next of valueImports(file)) {
      if (chains.has(next)) continue;
      chains.set(next, [...chains.get(file)!, next]);
      queue.push(next);
    }
  }
  return chains;
}

describe('a saga run evaluates only the modules a saga uses (issue 20)', () => {
  it('reaches none of the session’s, the worker’s or the clients’ schema modules from workflows/saga', () => {
    const chains = reachable(path.join(root, 'workflows/saga/index.ts'));
    const rel = (f: string) => path.relative(root, f);
    assert.ok(chains.size > 20, `the walk found the saga's modules (${chains.size})`);
    assert.ok(chains.has(path.join(root, 'src/core/sagaStart.ts')), 'the walk reaches what a saga does import');
    const reached = NOT_A_SAGAS.flatMap((f) => {
      const chain = chains.get(path.join(root, f));
      return chain ? [chain.map(rel).join(' → ')] : [];
    });
    assert.deepEqual(reached, [], 'a saga imports, for its values, a module it does not use');
  });

  it('finds such a module when one is imported (the check can fail)', () => {
    const chains = reachable(path.join(root, 'workflows/session/index.ts'));
    assert.ok(chains.has(path.join(root, 'src/core/session.ts')), 'the session reaches its own config module');
  });
});
