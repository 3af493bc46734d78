/**
 * Docs that run (issue 23): every command block of README.md and docs/CLI.md,
 * and every program of docs/CONTRACT.md, runs in document order against the
 * test's dev server, as a reader would run them one after another; the files
 * the docs show (`file=NAME`) are written first, and each output the docs show
 * must be what its command prints (tests/docs/markdown.ts has the markers).
 *
 * Each document gets a working directory and a worker of its own (a task
 * queue: its lists show its own sessions only, and the docs' default task
 * queue is what `HV_TASK_QUEUE` names), and its session ids `s0` … `s9` get a
 * prefix of this run's, so the docs' ids never meet another document's or an
 * earlier run's on a shared server. `hv` is `node bin/hv.js`.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Worker } from '@temporalio/worker';
import { registerDemoHandlers } from '../../activities/demoHandlers';
import { findPythonVenv } from '../../scripts/e2eTools';
import { loadHypervisorKey } from '../../src/store/treeHeads';
import { findTemporalCli } from '../../worker/temporalCli';
import { createHypervisorWorker } from '../../worker/worker';
import { testEnv, testToolPolicy } from '../helpers/env';
import { runProcess, stopProcesses } from '../e2e/helpers/processes';
import { fencedBlocks, outputMismatch, runnable, type Block } from './markdown';

const CLONE = path.resolve(__dirname, '../..');
/** HV_DOCS=docs/CLI.md runs one document (comma-separated: several), for whoever is editing it. */
const DOCS = process.env.HV_DOCS?.split(',') ?? ['README.md', 'docs/CLI.md', 'docs/CONTRACT.md'];
const BLOCK_TIMEOUT_MS = 180_000;

/** Before each shell block: the variables earlier blocks set (`set -a` exports them all), `hv`, and `set -e`. */
const PRELUDE = `exec 2>&1
set -a
if [ -f "$DOCS_STATE" ]; then . "$DOCS_STATE"; fi
hv() { node "$HV_CLONE/bin/hv.js" "$@"; }
trap 'export -p | grep -vE "^declare -x (PWD|OLDPWD|SHLVL|_)=" > "$DOCS_STATE"' EXIT
set -e
`;

for (const doc of DOCS) {
  describe(`docs: ${doc} runs`, function () {
    this.timeout(BLOCK_TIMEOUT_MS);
    const blocks = fencedBlocks(fs.readFileSync(path.join(CLONE, doc), 'utf8'));
    // A prefix of this run for the docs' session ids: `s1` runs as `<prefix>s1`, in commands and outputs alike.
    const prefix = `${path.basename(doc, '.md').toLowerCase()}-${Date.now().toString(36)}${randomBytes(2).toString('hex')}-`;
    const ids = (text: string) => text.replace(/\bs([0-9])\b/g, `${prefix}s$1`);
    let dir: string;
    let worker: Worker;
    let workerRun: Promise<void>;
    let env: NodeJS.ProcessEnv;
    let failed: string | undefined;

    before(async function () {
      const t = await testEnv();
      registerDemoHandlers(); // the stock worker's handlers, which the docs' agents declare
      const taskQueue = `hv-docs-${prefix}${process.pid}`;
      worker = await createHypervisorWorker({
        connection: t.nativeConnection,
        namespace: t.namespace,
        taskQueue,
        store: t.store,
        toolPolicy: testToolPolicy,
        retentionSchedule: false,
        hypervisorKey: loadHypervisorKey({ dataDir: t.dataDir }), // the test worker's: `$HV_DATA_DIR/hypervisor.key`
      });
      workerRun = worker.run();
      dir = fs.mkdtempSync(path.join(os.tmpdir(), `hv-docs-${path.basename(doc, '.md')}-`));
      // `import … from 'agent-hypervisor/src/client'` in a TypeScript example finds the clone.
      fs.mkdirSync(path.join(dir, 'node_modules'));
      fs.symlinkSync(CLONE, path.join(dir, 'node_modules', 'agent-hypervisor'));
      for (const b of blocks.filter((b) => typeof b.attrs.file === 'string'))
        fs.writeFileSync(path.join(dir, b.attrs.file as string), ids(b.body));
      const temporal = findTemporalCli();
      env = {
        ...process.env,
        TEMPORAL_ADDRESS: t.address,
        TEMPORAL_NAMESPACE: t.namespace,
        HV_TASK_QUEUE: taskQueue,
        HV_DATA_DIR: t.dataDir,
        HV_CLONE: CLONE,
        DOCS_STATE: path.join(dir, '.docs-state.sh'),
        PATH: [temporal && path.dirname(temporal), process.env.PATH].filter(Boolean).join(path.delimiter),
        PYTHONDONTWRITEBYTECODE: '1',
        PYTHONUNBUFFERED: '1',
      };
    });

    after(async () => {
      stopProcesses();
      worker?.shutdown();
      await workerRun;
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    blocks.forEach((block, i) => {
      if (!runnable(block)) return;
      const next = blocks[i + 1];
      const expected = next?.attrs.output ? next : undefined;
      it(`${doc}:${block.line} ${block.lang}${expected ? ` (its output, line ${expected.line})` : ''}`, async () => {
        if (failed) throw new Error(`not run: the block at ${failed} failed, and the docs run in order`);
        try {
          await runBlock(block, expected);
        } catch (err) {
          failed = `${doc}:${block.line}`;
          throw err;
        }
      });
    });

    async function runBlock(block: Block, expected: Block | undefined): Promise<void> {
      const name = `block-${block.line}`;
      let script: string;
      if (block.lang === 'sh') {
        script = PRELUDE + ids(block.body);
      } else if (block.lang === 'ts') {
        fs.writeFileSync(path.join(dir, `${name}.ts`), ids(block.body));
        script = `exec 2>&1\nexec "$HV_CLONE/node_modules/.bin/tsx" ${name}.ts\n`;
      } else {
        const python = findPythonVenv();
        assert.ok(
          python,
          'the Python examples need the e2e virtualenv with temporalio: run `npx tsx scripts/provision-e2e.ts` first',
        );
        fs.writeFileSync(path.join(dir, `${name}.py`), ids(block.body));
        script = `exec 2>&1\nexec ${JSON.stringify(python)} ${name}.py\n`;
      }
      const cwd = block.attrs.cwd === 'clone' ? CLONE : dir;
      const want = block.attrs.exit === undefined ? 0 : Number(block.attrs.exit);
      const deadline = Date.now() + (block.attrs.eventually ? 20_000 : 0);
      for (;;) {
        const run = await runProcess('bash', ['-c', script], { cwd, env, timeoutMs: BLOCK_TIMEOUT_MS });
        const shown = `\n--- its output ---\n${run.stdout}--- end ---`;
        const mismatch = expected && outputMismatch(ids(expected.body), run.stdout);
        if ((run.code !== want || mismatch) && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 1000));
          continue;
        }
        // Plain errors: mocha prints their whole message (the output included), with no diff of booleans.
        if (run.code !== want) throw new Error(`exit code ${run.code}, the docs say ${want}${shown}`);
        if (mismatch)
          throw new Error(`the output differs from the docs' (line ${expected!.line}): ${mismatch}${shown}`);
        return;
      }
    }
  });
}
