/**
 * The outside tools the end-to-end tests use: Debian's Chromium (driven by
 * playwright-core; no browser is ever downloaded) and a Python virtualenv with
 * the Temporal Python SDK from PyPI. Like the Temporal CLI, the virtualenv lives
 * in a per-user cache so every clone on the machine reuses it, with `.tools/` in
 * the clone as the fallback when the cache is not writable.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PROJECT_ROOT } from '../worker/config';
import { isExecutable, writable } from '../worker/temporalCli';

/** The Temporal Python SDK the e2e tests pin; a new pin gets a virtualenv of its own. */
export const TEMPORALIO_VERSION = process.env.HV_TEMPORALIO_VERSION || '1.35.0';
/** PyCA cryptography, for the did:key example's Ed25519 signatures (tests/e2e/python/signed_requests.py). */
export const CRYPTOGRAPHY_VERSION = '50.0.2';
/** What the virtualenv holds; its folder is named after them, so a new pin never changes a virtualenv in use. */
const PY_PACKAGES = [`temporalio==${TEMPORALIO_VERSION}`, `cryptography==${CRYPTOGRAPHY_VERSION}`];

/** Where Debian's `chromium` package puts the browser; HV_CHROMIUM overrides. */
export function chromiumPath(): string {
  return process.env.HV_CHROMIUM || '/usr/bin/chromium';
}

/** The Chromium binary, or an error that says how to provision it. */
export function requireChromium(): string {
  const file = chromiumPath();
  if (!isExecutable(file)) {
    throw new Error(
      `Chromium is not installed at ${file}. Run \`sudo npx tsx scripts/provision-e2e.ts\` (it runs apt-get install -y chromium) or set HV_CHROMIUM.`,
    );
  }
  return file;
}

/** Flags for a headless Chromium that talks to nothing but the pages it is sent to. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

/** The per-user cache first; `.tools/` in the clone when the cache is not writable. */
export function venvDirs(): string[] {
  const cacheRoot = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  const name = `temporalio-${TEMPORALIO_VERSION}-cryptography-${CRYPTOGRAPHY_VERSION}`;
  return [
    path.join(cacheRoot, 'agent-hypervisor', 'python-venv', name),
    path.join(PROJECT_ROOT, '.tools', 'python-venv', name),
  ];
}

/** The interpreter of a ready virtualenv (one whose `temporalio` imports), or undefined. */
export function findPythonVenv(): string | undefined {
  for (const dir of venvDirs()) {
    const python = path.join(dir, 'bin', 'python');
    // The marker is written last, after `temporalio` installed and imported.
    if (isExecutable(python) && fs.existsSync(path.join(dir, '.ready'))) return python;
  }
  return undefined;
}

function basePython(): string {
  const given = process.env.HV_PYTHON;
  if (given) return given;
  for (const candidate of ['python3', 'python']) {
    try {
      execFileSync(candidate, ['-c', 'import sys, venv; assert sys.version_info >= (3, 9)'], { stdio: 'ignore' });
      return candidate;
    } catch {
      // try the next one
    }
  }
  throw new Error(
    'Python 3.9 or newer with the venv module is needed for the Python SDK test (set HV_PYTHON to its path).',
  );
}

function run(command: string, args: string[], log: (line: string) => void): Promise<void> {
  log(`  $ ${command} ${args.join(' ')}`);
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0
        ? resolve()
        : reject(new Error(`${command} ${args.join(' ')} exited with code ${code}:\n${output.slice(-4000)}`)),
    );
  });
}

/**
 * The virtualenv's python, creating the virtualenv with `temporalio` first when
 * this machine has none. It is built in a private folder and renamed into place,
 * so a concurrent run never sees half a virtualenv (the python inside a venv
 * finds its packages relative to itself, so the rename is safe; pip is only ever
 * run as `python -m pip`).
 */
export async function ensurePythonVenv(log: (line: string) => void = console.error): Promise<string> {
  const ready = findPythonVenv();
  if (ready) return ready;
  const target = venvDirs().find((d) => writable(path.dirname(d)));
  if (!target) throw new Error(`no writable folder for the Python virtualenv (tried ${venvDirs().join(', ')})`);
  const staging = fs.mkdtempSync(`${target}.build-`);
  const started = Date.now();
  log(`Creating a Python virtualenv with ${PY_PACKAGES.join(', ')} in ${target}`);
  try {
    await run(basePython(), ['-m', 'venv', staging], log);
    const python = path.join(staging, 'bin', 'python');
    await run(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', ...PY_PACKAGES], log);
    await run(python, ['-c', 'import temporalio.client, cryptography.hazmat.primitives.asymmetric.ed25519'], log);
    fs.writeFileSync(path.join(staging, '.ready'), PY_PACKAGES.join('\n') + '\n');
    try {
      fs.renameSync(staging, target);
    } catch (err) {
      // Another run finished first (the target exists): use its virtualenv.
      if (!findPythonVenv()) throw err;
    }
    log(`Python virtualenv ready in ${Math.round((Date.now() - started) / 1000)} s`);
    return findPythonVenv() ?? path.join(target, 'bin', 'python');
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}
