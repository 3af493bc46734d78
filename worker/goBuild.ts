/**
 * Builds Go commands once from their modules into a per-user cache, so every
 * clone on the machine reuses them. Nothing is downloaded as a binary: the Go
 * module proxy serves source. `GOTOOLCHAIN=local` keeps Go from fetching a
 * toolchain; a build lands in a private folder first, then is renamed into
 * place, so a concurrent build never sees half a binary.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PROJECT_ROOT } from './config';

export function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

export function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    if (dir && isExecutable(path.join(dir, name))) return path.join(dir, name);
  }
  return undefined;
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

/** `<cache>/agent-hypervisor/<tool>/<version>` first; `.tools/<tool>` in the clone when the cache is not writable. */
export function buildDirs(tool: string, version: string): string[] {
  const cacheRoot = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return [path.join(cacheRoot, 'agent-hypervisor', tool, version), path.join(PROJECT_ROOT, '.tools', tool)];
}

export function goBinary(what: string): string {
  const go = onPath('go') ?? (isExecutable('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : undefined);
  if (!go) {
    throw new Error(
      `${what} was not found and Go is not installed to build it.\n` +
        '  Install Go 1.23 or newer (https://go.dev/doc/install), or point the documented variable at an existing binary.',
    );
  }
  return go;
}

export function goEnv(go: string, name: string): string {
  return execFileSync(go, ['env', name], { encoding: 'utf8', env: { ...process.env, GOTOOLCHAIN: 'local' } }).trim();
}

export interface GoCommand {
  /** module/path@version */
  module: string;
  /** The binary `go install` writes (the package's last path element). */
  built: string;
  /** The name it gets in the build folder. */
  name: string;
}

/**
 * `go install`s the commands into `dir` (one `go install`, so modules are
 * fetched and compiled once), reporting progress every 30 s.
 */
export async function goInstall(
  what: string,
  commands: GoCommand[],
  dir: string,
  log: (line: string) => void,
): Promise<void> {
  const go = goBinary(what);
  const staging = fs.mkdtempSync(path.join(dir, '.build-'));
  log(`Building ${what} from its Go module into ${dir}`);
  log('  This is a one-time build of a few minutes; later runs and other clones reuse it.');
  const started = Date.now();
  const ticker = setInterval(
    () => log(`  … still building ${what} (${Math.round((Date.now() - started) / 1000)} s)`),
    30_000,
  );
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(go, ['install', ...commands.map((c) => c.module)], {
        env: { ...process.env, GOBIN: staging, GOTOOLCHAIN: 'local', CGO_ENABLED: process.env.CGO_ENABLED ?? '0' },
        stdio: ['ignore', 'inherit', 'inherit'],
      });
      child.on('error', reject);
      child.on('exit', (code) =>
        code === 0
          ? resolve()
          : reject(new Error(`go install ${commands.map((c) => c.module).join(' ')} exited with code ${code}`)),
      );
    });
    for (const c of commands) fs.renameSync(path.join(staging, c.built), path.join(dir, c.name));
    log(`Built ${what} in ${Math.round((Date.now() - started) / 1000)} s`);
  } finally {
    clearInterval(ticker);
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * `go build`s a command of this repository (a folder with its own go.mod and
 * go.sum) into `<cache>/agent-hypervisor/<name>/<hash of its sources>/<name>`:
 * a changed source builds anew, an unchanged one is reused by every clone.
 */
export async function goBuildLocal(
  name: string,
  sourceDir: string,
  log: (line: string) => void = console.error,
): Promise<string> {
  const hash = createHash('sha256');
  for (const file of fs
    .readdirSync(sourceDir)
    .filter((f) => /\.go$|^go\.(mod|sum)$/.test(f))
    .sort()) {
    hash.update(file).update(fs.readFileSync(path.join(sourceDir, file)));
  }
  const dir = buildDirs(name, hash.digest('hex').slice(0, 16)).find(writable);
  if (!dir) throw new Error(`no writable folder to build ${name} into (tried ${buildDirs(name, '…').join(', ')})`);
  const target = path.join(dir, name);
  if (isExecutable(target)) return target;
  const go = goBinary(name);
  const staging = fs.mkdtempSync(path.join(dir, '.build-'));
  log(
    `Building ${name} from ${path.relative(PROJECT_ROOT, sourceDir)} into ${dir} (once; about a minute with Go's module cache warm)`,
  );
  const started = Date.now();
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(go, ['build', '-buildvcs=false', '-o', path.join(staging, name), '.'], {
        cwd: sourceDir,
        env: {
          ...process.env,
          GOTOOLCHAIN: 'local',
          GOFLAGS: '-mod=readonly',
          CGO_ENABLED: process.env.CGO_ENABLED ?? '0',
        },
        stdio: ['ignore', 'inherit', 'inherit'],
      });
      child.on('error', reject);
      child.on('exit', (code) =>
        code === 0 ? resolve() : reject(new Error(`go build in ${sourceDir} exited with code ${code}`)),
      );
    });
    fs.renameSync(path.join(staging, name), target);
    log(`Built ${name} in ${Math.round((Date.now() - started) / 1000)} s`);
    return target;
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}
