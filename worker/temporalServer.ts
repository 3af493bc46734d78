/**
 * The Temporal server itself and its SQL schema tool, for a real cluster on
 * PostgreSQL (scripts/cluster.ts). Built once from their Go module at the
 * version the CLI pins (neither command's module has a `replace` directive,
 * so `go install` takes them); the module's PostgreSQL schemas are copied
 * next to the binaries, so a cleaned Go module cache does not lose them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildDirs, goBinary, goEnv, goInstall, isExecutable, writable } from './goBuild';

/** The server inside Temporal CLI v1.5.1 (TEMPORAL-NOTES.md). */
export const TEMPORAL_SERVER_VERSION = process.env.TEMPORAL_SERVER_VERSION || 'v1.29.1';

export interface TemporalServerTools {
  /** `temporal-server --root DIR --config config --env NAME --allow-no-auth start` */
  server: string;
  /** `temporal-sql-tool --plugin postgres12 …` */
  sqlTool: string;
  /** schema/postgresql/v12 of the server's module: temporal/ and visibility/, each with versioned/. */
  schemaDir: string;
}

/** Where the server's module keeps its PostgreSQL schemas (Temporal's admin-tools image has them under /etc/temporal). */
export const POSTGRES_SCHEMA_SUBDIR = path.join('schema', 'postgresql', 'v12');

const serverDirs = () => buildDirs('temporal-server', TEMPORAL_SERVER_VERSION);

function toolsIn(dir: string): TemporalServerTools {
  return { server: path.join(dir, 'temporal-server'), sqlTool: path.join(dir, 'temporal-sql-tool'), schemaDir: path.join(dir, POSTGRES_SCHEMA_SUBDIR) };
}

const complete = (t: TemporalServerTools) =>
  isExecutable(t.server) && isExecutable(t.sqlTool) && fs.existsSync(path.join(t.schemaDir, 'temporal', 'versioned'));

/** TEMPORAL_SERVER_DIR (a folder holding the three) → the project's own build; undefined when none exists yet. */
export function findTemporalServer(): TemporalServerTools | undefined {
  const given = process.env.TEMPORAL_SERVER_DIR;
  if (given) {
    const tools = toolsIn(given);
    if (!complete(tools)) throw new Error(`TEMPORAL_SERVER_DIR=${given} must hold temporal-server, temporal-sql-tool and schema/postgresql/v12`);
    return tools;
  }
  return serverDirs().map(toolsIn).find(complete);
}

/** Builds both commands (one `go install`, about 2–5 minutes from nothing) and copies the schemas. */
export async function buildTemporalServer(log: (line: string) => void = console.error): Promise<TemporalServerTools> {
  const dir = serverDirs().find(writable);
  if (!dir) throw new Error(`no writable folder to build the Temporal server into (tried ${serverDirs().join(', ')})`);
  const what = `the Temporal server ${TEMPORAL_SERVER_VERSION}`;
  await goInstall(what, [
    { module: `go.temporal.io/server/cmd/server@${TEMPORAL_SERVER_VERSION}`, built: 'server', name: 'temporal-server' },
    { module: `go.temporal.io/server/cmd/tools/sql@${TEMPORAL_SERVER_VERSION}`, built: 'sql', name: 'temporal-sql-tool' },
  ], dir, log);
  const moduleDir = path.join(goEnv(goBinary(what), 'GOMODCACHE'), `go.temporal.io/server@${TEMPORAL_SERVER_VERSION}`);
  const tools = toolsIn(dir);
  fs.rmSync(tools.schemaDir, { recursive: true, force: true });
  fs.cpSync(path.join(moduleDir, POSTGRES_SCHEMA_SUBDIR), tools.schemaDir, { recursive: true });
  // The module cache is read-only; the copy need not be.
  fs.chmodSync(tools.schemaDir, 0o755);
  return tools;
}

/** The server's tools, building them first when this machine has none. */
export async function ensureTemporalServer(log?: (line: string) => void): Promise<TemporalServerTools> {
  return findTemporalServer() ?? (await buildTemporalServer(log));
}
