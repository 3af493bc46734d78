/**
 * Finds the Temporal CLI (which holds the dev server and the Web UI) or builds
 * it once from its Go module into the per-user cache (worker/goBuild.ts).
 */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { buildDirs, goInstall, isExecutable, onPath, writable } from './goBuild';

export { isExecutable, writable } from './goBuild';

/** The newest CLI whose go.mod has no `replace` directive, so `go install` accepts it. */
export const TEMPORAL_CLI_VERSION = process.env.TEMPORAL_CLI_VERSION || 'v1.5.1';

/**
 * The Web UI server that CLI v1.5.1 embeds (its go.mod requires
 * github.com/temporalio/ui-server/v2 v2.42.1); docker-compose.yml runs the
 * same UI as the temporalio/ui image of this tag.
 */
export const TEMPORAL_UI_VERSION = '2.42.1';

const cliDirs = () => buildDirs('temporal-cli', TEMPORAL_CLI_VERSION);

/** TEMPORAL_CLI → `temporal` on PATH → the project's own build; undefined when none exists yet. */
export function findTemporalCli(): string | undefined {
  const given = process.env.TEMPORAL_CLI;
  if (given) {
    if (!isExecutable(given)) throw new Error(`TEMPORAL_CLI=${given} is not an executable file`);
    return given;
  }
  return (
    onPath('temporal') ??
    cliDirs()
      .map((d) => path.join(d, 'temporal'))
      .find(isExecutable)
  );
}

/** Builds the CLI with `go install` into the first writable build folder. Takes a few minutes once. */
export async function buildTemporalCli(log: (line: string) => void = console.error): Promise<string> {
  const dir = cliDirs().find(writable);
  if (!dir) throw new Error(`no writable folder to build the Temporal CLI into (tried ${cliDirs().join(', ')})`);
  await goInstall(
    `the Temporal CLI ${TEMPORAL_CLI_VERSION}`,
    [{ module: `github.com/temporalio/cli/cmd/temporal@${TEMPORAL_CLI_VERSION}`, built: 'temporal', name: 'temporal' }],
    dir,
    log,
  );
  return path.join(dir, 'temporal');
}

/** The CLI's path, building it first when no copy exists on this machine. */
export async function ensureTemporalCli(log?: (line: string) => void): Promise<string> {
  return findTemporalCli() ?? (await buildTemporalCli(log));
}

export function temporalCliVersion(cli: string): string {
  return execFileSync(cli, ['--version'], { encoding: 'utf8' }).trim();
}
