/**
 * Loads a compose file with the Compose Specification's own Go loader
 * (tools/compose-check, github.com/compose-spec/compose-go/v2), which checks
 * it as `docker compose config` does, with no Docker engine. The checker is
 * built once into the per-user cache, in a folder named by the hash of its
 * sources, so an edit to them builds a new one and every clone reuses it.
 *
 * A cold build costs 75–80 s on this project's 2-core machine with an empty
 * Go build cache (measured; its modules, a few MB, come from the Go module
 * proxy the first time), about 10 s with a warm one; later runs only find it.
 */
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { PROJECT_ROOT } from './config';
import { goBuildLocal } from './goBuild';

export const COMPOSE_CHECK_SOURCE = path.join(PROJECT_ROOT, 'tools', 'compose-check');

/** The fields of the loader's normalized project that the project reads (the rest pass through). */
export interface ComposePort {
  target: number;
  published?: string;
  protocol?: string;
  host_ip?: string;
}
export interface ComposeVolume {
  type: string;
  source?: string;
  target: string;
  read_only?: boolean;
}
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

/** The checker's path, building it first (worker/goBuild.ts) when this version of its sources has none. */
export function ensureComposeCheck(log: (line: string) => void = console.error): Promise<string> {
  return goBuildLocal('compose-check', COMPOSE_CHECK_SOURCE, log);
}

export interface LoadComposeOptions {
  /** Where relative paths resolve (default: the file's folder), as `docker compose --project-directory`. */
  projectDirectory?: string;
  /** Fixed, so the result does not depend on the folder's name (default agent-hypervisor). */
  projectName?: string;
  /** The only variables interpolation sees (default none): what an operator would set in the environment or .env. */
  env?: Record<string, string>;
}

/**
 * The normalized project, as the loader sees `file` (validation, interpolation
 * with `options.env` as the whole environment, consistency checks). Rejects with the loader's
 * own message when the file is invalid.
 */
export async function loadComposeProject(file: string, options: LoadComposeOptions = {}): Promise<ComposeProject> {
  const checker = await ensureComposeCheck();
  const args = ['-project-name', options.projectName ?? 'agent-hypervisor'];
  if (options.projectDirectory) args.push('-project-directory', options.projectDirectory);
  for (const [name, value] of Object.entries(options.env ?? {})) args.push('-env', `${name}=${value}`);
  args.push(file);
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(checker, args, { maxBuffer: 16 * 1024 * 1024 }, (err, out, stderr) => {
      if (err) reject(new Error(`compose-check ${path.basename(file)}: ${stderr.trim() || err.message}`));
      else resolve(out);
    });
  });
  return JSON.parse(stdout) as ComposeProject;
}
