/**
 * The Temporal server itself and its SQL schema tool, for a real cluster on
 * PostgreSQL (scripts/cluster.ts). The server is this repository's own
 * command, deploy/temporal-server: Temporal's server module at the version
 * the CLI pins, started as its cmd/server does, with the hypervisor's mutual
 * TLS access policy built in (temporal.WithAuthorizer/WithClaimMapper; see
 * deploy/temporal-server/policy.go). It is `go build`t into a folder named by
 * the hash of its sources, so an edit builds anew and every clone reuses an
 * unchanged build. The SQL tool is `go install`ed from the server's module
 * (no `replace` directive), and the module's PostgreSQL schemas are copied
 * next to it, so a cleaned Go module cache does not lose them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PROJECT_ROOT } from './config';
import { buildDirs, goBinary, goBuildLocal, goEnv, goInstall, isExecutable, writable } from './goBuild';

/** The server inside Temporal CLI v1.5.1 (TEMPORAL-NOTES.md). */
export const TEMPORAL_SERVER_VERSION = process.env.TEMPORAL_SERVER_VERSION || 'v1.29.1';

/** The server's Go module in this repository (its go.mod pins go.temporal.io/server at TEMPORAL_SERVER_VERSION). */
export const TEMPORAL_SERVER_SOURCE = path.join(PROJECT_ROOT, 'deploy', 'temporal-server');

export interface TemporalServerTools {
  /** `temporal-server --root DIR --config config --env NAME start`; `temporal-server certs --dir DIR` (deploy/temporal-server) */
  server: string;
  /** `temporal-sql-tool --plugin postgres12 …` */
  sqlTool: string;
  /** schema/postgresql/v12 of the server's module: temporal/ and visibility/, each with versioned/. */
  schemaDir: string;
}

/** Where the server's module keeps its PostgreSQL schemas (Temporal's admin-tools image has them under /etc/temporal). */
export const POSTGRES_SCHEMA_SUBDIR = path.join('schema', 'postgresql', 'v12');

/** The SQL tool and the schemas: `<cache>/agent-hypervisor/temporal-server/<version>`. */
const sqlToolDirs = () => buildDirs('temporal-server', TEMPORAL_SERVER_VERSION);

const sqlToolIn = (dir: string) => ({
  sqlTool: path.join(dir, 'temporal-sql-tool'),
  schemaDir: path.join(dir, POSTGRES_SCHEMA_SUBDIR),
});

const sqlToolComplete = (t: { sqlTool: string; schemaDir: string }) =>
  isExecutable(t.sqlTool) && fs.existsSync(path.join(t.schemaDir, 'temporal', 'versioned'));

/**
 * TEMPORAL_SERVER_DIR: a folder holding temporal-server (built from
 * deploy/temporal-server, e.g. the compose image's), temporal-sql-tool and
 * schema/postgresql/v12 — used as it is. Undefined when unset.
 */
export function givenTemporalServer(): TemporalServerTools | undefined {
  const given = process.env.TEMPORAL_SERVER_DIR;
  if (!given) return undefined;
  const tools = { server: path.join(given, 'temporal-server'), ...sqlToolIn(given) };
  if (!isExecutable(tools.server) || !sqlToolComplete(tools)) {
    throw new Error(
      `TEMPORAL_SERVER_DIR=${given} must hold temporal-server, temporal-sql-tool and schema/postgresql/v12`,
    );
  }
  return tools;
}

/** The SQL tool (one `go install`) and the module's schemas, once per server version. */
async function ensureSqlTool(log: (line: string) => void): Promise<{ sqlTool: string; schemaDir: string }> {
  const found = sqlToolDirs().map(sqlToolIn).find(sqlToolComplete);
  if (found) return found;
  const dir = sqlToolDirs().find(writable);
  if (!dir)
    throw new Error(`no writable folder to build the Temporal SQL tool into (tried ${sqlToolDirs().join(', ')})`);
  const what = `the Temporal SQL tool ${TEMPORAL_SERVER_VERSION}`;
  await goInstall(
    what,
    [
      {
        module: `go.temporal.io/server/cmd/tools/sql@${TEMPORAL_SERVER_VERSION}`,
        built: 'sql',
        name: 'temporal-sql-tool',
      },
    ],
    dir,
    log,
  );
  const moduleDir = path.join(goEnv(goBinary(what), 'GOMODCACHE'), `go.temporal.io/server@${TEMPORAL_SERVER_VERSION}`);
  const tools = sqlToolIn(dir);
  fs.rmSync(tools.schemaDir, { recursive: true, force: true });
  fs.cpSync(path.join(moduleDir, POSTGRES_SCHEMA_SUBDIR), tools.schemaDir, { recursive: true });
  // The module cache is read-only; the copy need not be.
  fs.chmodSync(tools.schemaDir, 0o755);
  return tools;
}

/**
 * The server (deploy/temporal-server, built when its sources changed:
 * about 2.5 minutes with Go's build cache warm from the Temporal CLI's build,
 * 6 from an empty one, measured on the shared 2-core machine) and the SQL tool.
 */
export async function ensureTemporalServer(log: (line: string) => void = console.error): Promise<TemporalServerTools> {
  const given = givenTemporalServer();
  if (given) return given;
  const server = await goBuildLocal('temporal-server', TEMPORAL_SERVER_SOURCE, log);
  return { server, ...(await ensureSqlTool(log)) };
}
