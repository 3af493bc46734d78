import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { sharedWorkflowModules } from '../../worker/worker';

/**
 * Every workflow run of a worker thread shares the modules the bundle preloads (workflows/shared.ts): they are
 * evaluated once and frozen, not once per run. So they may be libraries only — a module of the hypervisor's own
 * keeps a run's state (workflows/ownRun.ts: its run id) or caches lazily on its schemas, which the freeze breaks.
 */
describe('the modules workflow runs share', () => {
  it('are workflows/shared.ts and workflows/stackFrames.ts, which import libraries only, never a module of the hypervisor', () => {
    const modules = sharedWorkflowModules();
    assert.deepEqual(
      modules.map((m) => path.relative(path.resolve(__dirname, '../..'), m)),
      [path.join('workflows', 'shared.ts'), path.join('workflows', 'stackFrames.ts')],
    );
    const imports = (file: string) =>
      [...fs.readFileSync(file, 'utf8').matchAll(/^\s*(?:import|export)\b[^'"]*['"]([^'"]+)['"]/gm)].map((m) => m[1]!);
    for (const module of modules)
      assert.deepEqual(
        imports(module).filter((s) => s.startsWith('.') || s.startsWith('/')),
        [],
        `a shared module imports only libraries (${module})`,
      );
    assert.ok(imports(modules[0]!).includes('zod'), `zod is shared (imports: ${imports(modules[0]!).join(', ')})`);
  });
});
