/**
 * Finds the Temporal CLI (which holds the dev server and the Web UI) or builds
 * it once from its Go module. Nothing is downloaded as a binary: the Go module
 * proxy serves source, and the build lands in a per-user cache so every clone
 * on the machine reuses it.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PROJECT_ROOT } from './config';

/** The newest CLI whose go.mod has no `replace` directive, so `go install` accepts it. */
export const TEMPORAL_CLI_VERSION = process.env.TEMPORAL_CLI_VERSION || 'v1.5.1';

export function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    if (dir && isExecutable(path.join(dir, name))) return path.join(dir, name);
  }
  return undefined;
}

/** The per-user cache folder first; `.tools/bin` in the clone when the cache is not writable. */
export function buildDirs(): string[] {
  const cacheRoot = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return [
    path.join(cacheRoot, 'agent-hypervisor', 'temporal-cli', TEMPORAL_CLI_VERSION),
    path.join(PROJECT_ROOT, '.tools', 'bin'),
  ];
}

/** TEMPORAL_CLI → `temporal` on PATH → the project's own build; undefined when none exists yet. */
export function findTemporalCli(): string | undefined {
  const given = process.env.TEMPORAL_CLI;
  if (given) {
    if (!isExecutable(given)) throw new Error(`TEMPORAL_CLI=${given} is not an executable file`);
    return given;
  }
  return onPath('temporal') ?? buildDirs().map((d) => path.join(d, 'temporal')).find(isExecutable);
}

function goBinary(): string {
  const go = onPath('go') ?? (isExecutable('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : undefined);
  if (!go) {
    throw new Error(
      'The Temporal CLI was not found and Go is not installed to build it.\n' +
        '  Install Go 1.23 or newer (https://go.dev/doc/install), or point TEMPORAL_CLI at an existing `temporal` binary.',
    );
  }
  return go;
}

/** Creates the folder if needed; true when this process may write into it. */
export function writable(dir: string): boolean {
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.accessSync(dir, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Builds the CLI with `go install` into the first writable build folder. Takes a few minutes once. */
export async function buildTemporalCli(log: (line: string) => void = console.error): Promise<string> {
  const go = goBinary();
  const dir = buildDirs().find(writable);
  if (!dir) throw new Error(`no writable folder to build the Temporal CLI into (tried ${buildDirs().join(', ')})`);
  // Build into a private folder, then rename: a concurrent build never sees half a binary.
  const staging = fs.mkdtempSync(path.join(dir, '.build-'));
  const module = `github.com/temporalio/cli/cmd/temporal@${TEMPORAL_CLI_VERSION}`;
  log(`Building the Temporal CLI ${TEMPORAL_CLI_VERSION} from its Go module into ${dir}`);
  log('  This is a one-time build of a few minutes; later runs and other clones reuse it.');
  const started = Date.now();
  const ticker = setInterval(() => log(`  … still building (${Math.round((Date.now() - started) / 1000)} s)`), 30_000);
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(go, ['install', module], {
        env: { ...process.env, GOBIN: staging, GOTOOLCHAIN: 'local', CGO_ENABLED: process.env.CGO_ENABLED ?? '0' },
        stdio: ['ignore', 'inherit', 'inherit'],
      });
      child.on('error', reject);
      child.on('exit', (code) =>
        code === 0 ? resolve() : reject(new Error(`go install ${module} exited with code ${code}`)),
      );
    });
    const target = path.join(dir, 'temporal');
    fs.renameSync(path.join(staging, 'temporal'), target);
    log(`Built ${target} in ${Math.round((Date.now() - started) / 1000)} s`);
    return target;
  } finally {
    clearInterval(ticker);
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

/** The CLI's path, building it first when no copy exists on this machine. */
export async function ensureTemporalCli(log?: (line: string) => void): Promise<string> {
  return findTemporalCli() ?? (await buildTemporalCli(log));
}

export function temporalCliVersion(cli: string): string {
  return execFileSync(cli, ['--version'], { encoding: 'utf8' }).trim();
}
