/**
 * Loads a compose file with the Compose Specification's own Go loader
 * (tools/compose-check, github.com/compose-spec/compose-go/v2), which checks
 * it as `docker compose config` does, with no Docker engine. The checker is
 * built once into the per-user cache, in a folder named by the hash of its
 * sources, so an edit to them builds a new one and every clone reuses it.
 *
 * A cold build costs 75-80 s on this project's 2-core machine with an empty
 * Go build cache (measured; its modules, a few MB, come from the Go module
 * proxy the first time), about 10 s with a warm one; later runs only find it.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PROJECT_ROOT } from './config';
import { buildDirs, goBinary, isExecutable, writable } from './goBuild';

export const COMPOSE_CHECK_SOURCE = path.join(PROJECT_ROOT, 'tools', 'compose-check');
const SOURCES = ['go.mod', 'go.sum', 'main.go'];

/** The fields of the loader's normalized project that the project reads (the rest pass through). */
export interface ComposePort { target: number; published?: string; protocol?: string }
export interface ComposeVolume { type: string; source?: string; target: string; read_only?: boolean }
export interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile?: string };
  command?: string[] | null;
  entrypoint?: string[] | null;
  environment?: Record<string, string | null>;
  ports?: ComposePort[] | null;
  volumes?: ComposeVolume[] | null;
  depends_on?: Record<string, { condition: string; required?: boolean }> | null;
  healthcheck?: { test?: string[] };
  deploy?: { replicas?: number } | null;
  [key: string]: unknown;
}
export interface ComposeProject {
  name: string;
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
  [key: string]: unknown;
}

function sourceHash(): string {
  const hash = createHash('sha256');
  for (const file of SOURCES) hash.update(file).update('\0').update(fs.readFileSync(path.join(COMPOSE_CHECK_SOURCE, file)));
  return hash.digest('hex').slice(0, 16);
}

/** The checker's path, building it first (`go build`, GOTOOLCHAIN=local) when this version of its sources has none. */
export async function ensureComposeCheck(log: (line: string) => void = console.error): Promise<string> {
  const dirs = buildDirs('compose-check', sourceHash());
  const found = dirs.map((d) => path.join(d, 'compose-check')).find(isExecutable);
  if (found) return found;
  const dir = dirs.find(writable);
  if (!dir) throw new Error(`no writable folder to build compose-check into (tried ${dirs.join(', ')})`);
  const go = goBinary('compose-check (tools/compose-check)');
  // Built in a private folder, then renamed into place: a concurrent run never sees half a binary.
  const staging = fs.mkdtempSync(path.join(dir, '.build-'));
  const started = Date.now();
  log(`Building compose-check (the Compose Specification's loader) into ${dir}; once, about a minute.`);
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(go, ['build', '-mod=readonly', '-buildvcs=false', '-o', path.join(staging, 'compose-check'), '.'], {
        cwd: COMPOSE_CHECK_SOURCE,
        env: { ...process.env, GOTOOLCHAIN: 'local', CGO_ENABLED: '0' },
        stdio: ['ignore', 'inherit', 'inherit'],
      });
      child.on('error', reject);
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`go build in ${COMPOSE_CHECK_SOURCE} exited with code ${code}`))));
    });
    fs.renameSync(path.join(staging, 'compose-check'), path.join(dir, 'compose-check'));
    log(`Built compose-check in ${Math.round((Date.now() - started) / 1000)} s`);
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
  return path.join(dir, 'compose-check');
}

export interface LoadComposeOptions {
  /** Where relative paths resolve (default: the file's folder), as `docker compose --project-directory`. */
  projectDirectory?: string;
  /** Fixed, so the result does not depend on the folder's name (default agent-hypervisor). */
  projectName?: string;
}

/**
 * The normalized project, as the loader sees `file` (validation, interpolation
 * with an empty environment, consistency checks). Rejects with the loader's
 * own message when the file is invalid.
 */
export async function loadComposeProject(file: string, options: LoadComposeOptions = {}): Promise<ComposeProject> {
  const checker = await ensureComposeCheck();
  const args = ['-project-name', options.projectName ?? 'agent-hypervisor'];
  if (options.projectDirectory) args.push('-project-directory', options.projectDirectory);
  args.push(file);
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(checker, args, { maxBuffer: 16 * 1024 * 1024 }, (err, out, stderr) => {
      if (err) reject(new Error(`compose-check ${path.basename(file)}: ${stderr.trim() || err.message}`));
      else resolve(out);
    });
  });
  return JSON.parse(stdout) as ComposeProject;
}
