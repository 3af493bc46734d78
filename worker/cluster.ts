/**
 * A real Temporal cluster on this machine, from the project's own parts:
 * PostgreSQL from Debian's binaries (worker/postgres.ts), Temporal's schemas
 * set up by Temporal's own SQL tool, and the Temporal server (frontend,
 * history, matching and worker services in one process) built from its Go
 * module (worker/temporalServer.ts: deploy/temporal-server, with the
 * hypervisor's access policy) and configured by deploy/temporal/cluster.yaml
 * — the file docker-compose.yml mounts too. The audit store gets a database
 * on the same PostgreSQL.
 *
 * The frontend speaks mutual TLS only (issue 24): at start the cluster's
 * folder gets a private CA and certificates (<root>/tls, kept across restarts,
 * never in git; `temporal-server certs`), and every connection presents one:
 * the worker's (hv-worker) for the workers and the cluster's own setup, an
 * agent's (hv-agent) for agents' clients, which may only send updates,
 * signals and queries and start plain sessions (deploy/temporal-server/policy.go).
 *
 * Used by `npm run cluster` (scripts/cluster.ts), the cluster tests and
 * `npm run bench:durable` (its second target). Every process is ours, stopped by PID.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Client as PgClient } from 'pg';
import { Connection, type TLSConfig } from '@temporalio/client';
import Long from 'long';
import { SearchAttributeType } from '@temporalio/common';
import { SEARCH_ATTRIBUTES } from '../src/contract/searchAttributes';
import { tlsConfig, type TlsFiles } from '../src/node/connectionTls';
import { PROJECT_ROOT } from './config';
import { registerSearchAttributes, temporalAnswers, waitFor } from './devServer';
import { freeLowPort, freePort } from './ports';
import { startPostgres, type TestPostgres } from './postgres';
import { ensureTemporalServer, TEMPORAL_SERVER_VERSION, type TemporalServerTools } from './temporalServer';

/** The server's configuration: `--root deploy --config temporal --env cluster`. */
export const CLUSTER_CONFIG_ROOT = path.join(PROJECT_ROOT, 'deploy');
export const CLUSTER_CONFIG_DIR = 'temporal';
export const CLUSTER_CONFIG_ENV = 'cluster';
export const DYNAMIC_CONFIG_FILE = path.join(CLUSTER_CONFIG_ROOT, CLUSTER_CONFIG_DIR, 'dynamicconfig', 'cluster.yaml');

/** Databases on the cluster's PostgreSQL: Temporal's two (names as in the server's image) and the audit store's. */
export const CLUSTER_DATABASES = {
  temporal: 'temporal',
  visibility: 'temporal_visibility',
  audit: 'hv_audit',
} as const;

/** History shards: fixed for the life of the cluster's database. */
export const CLUSTER_HISTORY_SHARDS = 4;

/** How long closed workflows stay in Temporal (the audit trail outlives them in the audit store). */
export const CLUSTER_RETENTION_DAYS = 7;

/** The name in the frontend's certificate (deploy/temporal-server policy.go ServerName): clients check it. */
export const CLUSTER_SERVER_NAME = 'hv-temporal';

/** Common names of the client certificates `temporal-server certs` issues (deploy/temporal-server/policy.go). */
export const CLUSTER_CERTS = { worker: 'hv-worker', ui: 'hv-ui', agent: 'hv-agent' } as const;

/** The cluster's certificate folder: its CA, the frontend's certificate and the clients'. */
export interface ClusterTls {
  dir: string;
  /** The CA every certificate here is signed by (PEM). */
  ca: string;
  /** The files for a client with this certificate (CLUSTER_CERTS, or another name issued with `temporal-server certs --agents`). */
  client(name: string): TlsFiles;
}

export function clusterTls(dir: string): ClusterTls {
  return {
    dir,
    ca: path.join(dir, 'ca.pem'),
    client: (name) => ({
      cert: path.join(dir, `${name}.pem`),
      key: path.join(dir, `${name}.key`),
      ca: path.join(dir, 'ca.pem'),
      serverName: CLUSTER_SERVER_NAME,
    }),
  };
}

/** Issues what the folder lacks (the CA once; its key stays in the folder, mode 0600). */
export function writeClusterCerts(
  tools: TemporalServerTools,
  dir: string,
  agents: string[] = [CLUSTER_CERTS.agent],
): ClusterTls {
  const r = spawnSync(
    tools.server,
    ['certs', '--dir', dir, '--hosts', 'localhost,127.0.0.1', '--agents', agents.join(',')],
    { encoding: 'utf8', timeout: 60_000 },
  );
  if (r.status !== 0)
    throw new Error(`temporal-server certs failed (${r.status ?? r.signal}): ${r.stderr || r.stdout}`);
  return clusterTls(dir);
}

export interface ClusterOptions {
  /** Where PostgreSQL's data and the logs live; kept across restarts of the cluster. */
  root: string;
  /** The frontend's gRPC port (default: a free one). */
  port?: number;
  /** PostgreSQL's port (default: a free one). */
  postgresPort?: number;
  namespace?: string;
  log?: (line: string) => void;
}

export interface Cluster {
  /** host:port of the frontend */
  address: string;
  namespace: string;
  postgres: TestPostgres;
  /** The audit store's database URL (HV_AUDIT_DATABASE_URL for workers). */
  auditUrl: string;
  serverLog: string;
  /** The server's binary (deploy/temporal-server): `certs --dir DIR` issues certificates. */
  serverBinary: string;
  /** The server's environment, as deploy/temporal/cluster.yaml reads it. */
  serverEnv: Record<string, string>;
  /** The certificates: `tls.client(CLUSTER_CERTS.worker)` for workers, `…agent` for agents' clients. */
  tls: ClusterTls;
  /** The SDK's TLS options for the worker's certificate (what the cluster's own setup connects with). */
  workerTls: TLSConfig;
  /** The Temporal server's process id (it changes when the server restarts). */
  serverPid(): number | undefined;
  /** Stops the Temporal server (SIGTERM; SIGKILL after 20 s) and starts it again on the same ports and database. */
  restartServer(outageMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** Runs the SQL tool; throws with its output when it fails. */
function sqlTool(tools: TemporalServerTools, port: number, database: string, args: string[]): void {
  const r = spawnSync(
    tools.sqlTool,
    [
      '--plugin',
      SQL_PLUGIN,
      '--endpoint',
      '127.0.0.1',
      '--port',
      String(port),
      '--user',
      'postgres',
      '--password',
      '',
      '--database',
      database,
      ...args,
    ],
    { encoding: 'utf8', timeout: 300_000 },
  );
  if (r.status !== 0)
    throw new Error(
      `temporal-sql-tool ${args[0]} on ${database} failed (${r.status ?? r.signal}): ${(r.stderr || r.stdout).slice(-2000)}`,
    );
}

async function hasSchema(url: string): Promise<boolean> {
  const pg = new PgClient({ connectionString: url });
  await pg.connect();
  try {
    const r = await pg.query("SELECT 1 FROM information_schema.tables WHERE table_name = 'schema_version'");
    return (r.rowCount ?? 0) > 0;
  } finally {
    await pg.end();
  }
}

/** Temporal's SQL plugin for PostgreSQL (12 and newer). */
export const SQL_PLUGIN = 'postgres12';

/** Temporal's two databases, each with its schema's folder in the server's schema/postgresql/v12. */
export const CLUSTER_SCHEMAS = [
  [CLUSTER_DATABASES.temporal, 'temporal'],
  [CLUSTER_DATABASES.visibility, 'visibility'],
] as const;

/** Creates Temporal's databases and brings their schemas to the server's version (idempotent). */
export async function setUpSchemas(tools: TemporalServerTools, postgres: TestPostgres): Promise<void> {
  for (const [db, dir] of CLUSTER_SCHEMAS) {
    const url = await postgres.createDatabase(db);
    if (!(await hasSchema(url))) sqlTool(tools, postgres.port, db, ['setup-schema', '-v', '0.0']);
    sqlTool(tools, postgres.port, db, ['update-schema', '-d', path.join(tools.schemaDir, dir, 'versioned')]);
  }
}

/** The variables deploy/temporal/cluster.yaml reads for the ports of the server's four services. */
export const SERVER_PORT_VARS = [
  'FRONTEND_GRPC_PORT',
  'FRONTEND_HTTP_PORT',
  'FRONTEND_MEMBERSHIP_PORT',
  'HISTORY_GRPC_PORT',
  'HISTORY_MEMBERSHIP_PORT',
  'MATCHING_GRPC_PORT',
  'MATCHING_MEMBERSHIP_PORT',
  'WORKER_GRPC_PORT',
  'WORKER_MEMBERSHIP_PORT',
] as const;

/** The ports the server's four services listen on, all free now. */
async function servicePorts(frontend: number): Promise<Record<string, string>> {
  const ports: Record<string, string> = { FRONTEND_GRPC_PORT: String(frontend) };
  const taken = new Set([frontend]);
  for (const name of SERVER_PORT_VARS.filter((n) => n !== 'FRONTEND_GRPC_PORT')) {
    // Membership ports are stored in a SQL smallint: below 32768.
    const p = await freeLowPort(taken);
    taken.add(p);
    ports[name] = String(p);
  }
  return ports;
}

/**
 * The server's environment, as deploy/temporal/cluster.yaml reads it, for a
 * server on this machine. docker-compose.yml sets the same names (its
 * consistency test compares them).
 */
export function clusterServerEnv(
  postgresPort: number,
  ports: Record<string, string>,
  tlsDir: string,
): Record<string, string> {
  return {
    HV_TLS_DIR: tlsDir,
    POSTGRES_SEEDS: '127.0.0.1',
    DB_PORT: String(postgresPort),
    POSTGRES_USER: 'postgres',
    POSTGRES_PWD: '',
    DBNAME: CLUSTER_DATABASES.temporal,
    VISIBILITY_DBNAME: CLUSTER_DATABASES.visibility,
    NUM_HISTORY_SHARDS: String(CLUSTER_HISTORY_SHARDS),
    BIND_ON_IP: '127.0.0.1',
    TEMPORAL_BROADCAST_ADDRESS: '127.0.0.1',
    DYNAMIC_CONFIG_FILE_PATH: DYNAMIC_CONFIG_FILE,
    ...ports,
  };
}

/** Registers the namespace unless it exists; true when it was created now. */
async function ensureNamespace(address: string, namespace: string, tls: TLSConfig): Promise<boolean> {
  const connection = await Connection.connect({ address, tls });
  try {
    try {
      await connection.workflowService.describeNamespace({ namespace });
      return false;
    } catch (err) {
      if ((err as { code?: number }).code !== 5) throw err; // NOT_FOUND
    }
    await connection.workflowService
      .registerNamespace({
        namespace,
        workflowExecutionRetentionPeriod: { seconds: Long.fromNumber(CLUSTER_RETENTION_DAYS * 86_400) },
      })
      .catch((err: { code?: number }) => {
        if (err.code !== 6) throw err; // ALREADY_EXISTS: another starter was first
      });
    return true;
  } finally {
    await connection.close();
  }
}

/** Until a visibility query on every search attribute is accepted: the frontend's caches know them. */
async function searchAttributesUsable(address: string, namespace: string, tls: TLSConfig): Promise<boolean> {
  const connection = await Connection.connect({ address, tls });
  try {
    await connection.workflowService.countWorkflowExecutions({
      namespace,
      query: SEARCH_ATTRIBUTES.map((k) =>
        k.type === SearchAttributeType.DATETIME ? `${k.name} IS NULL` : `${k.name} = 'x'`,
      ).join(' AND '),
    });
    return true;
  } catch {
    return false;
  } finally {
    await connection.close();
  }
}

export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const log = options.log ?? console.error;
  const namespace = options.namespace ?? 'default';
  fs.mkdirSync(options.root, { recursive: true });
  const tools = await ensureTemporalServer(log);
  const tls = writeClusterCerts(tools, path.join(options.root, 'tls'));
  const workerTls = tlsConfig(tls.client(CLUSTER_CERTS.worker));
  const postgres = await startPostgres({
    root: path.join(options.root, 'postgres'),
    port: options.postgresPort,
    fsync: true,
    database: CLUSTER_DATABASES.audit,
  });
  let server: ChildProcess | undefined;
  let exited: Promise<unknown> = Promise.resolve();
  const killOnExit = () => server?.kill('SIGKILL');
  process.once('exit', killOnExit);
  try {
    await setUpSchemas(tools, postgres);
    const port = options.port ?? (await freePort());
    const address = `127.0.0.1:${port}`;
    const serverLog = path.join(options.root, 'temporal-server.log');
    const serverEnv = clusterServerEnv(postgres.port, await servicePorts(port), tls.dir);

    const startServer = async () => {
      const out = fs.openSync(serverLog, 'a');
      const child = spawn(
        tools.server,
        ['--root', CLUSTER_CONFIG_ROOT, '--config', CLUSTER_CONFIG_DIR, '--env', CLUSTER_CONFIG_ENV, 'start'],
        { env: { ...process.env, ...serverEnv }, stdio: ['ignore', out, out], detached: true },
      );
      fs.closeSync(out);
      let gone: { code: number | null } | undefined;
      exited = new Promise((resolve) =>
        child.once('exit', (code) => {
          gone = { code };
          resolve(undefined);
        }),
      );
      server = child;
      await waitFor(
        async () => {
          if (gone) throw new Error(`the Temporal server exited (code ${gone.code}); see ${serverLog}`);
          return temporalAnswers(address, workerTls);
        },
        `the Temporal server at ${address} (log: ${serverLog})`,
        120_000,
      );
    };
    const stopServer = async () => {
      const child = server;
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    };

    log(
      `Temporal server ${TEMPORAL_SERVER_VERSION} on ${address} (PostgreSQL on 127.0.0.1:${postgres.port}, ${CLUSTER_HISTORY_SHARDS} history shards)`,
    );
    await startServer();
    // The frontend answers before its namespace and search-attribute caches do: wait for each to be usable.
    const settled = (step: () => Promise<unknown>) => async () =>
      step().then(
        () => true,
        () => false,
      );
    await waitFor(
      settled(() => ensureNamespace(address, namespace, workerTls)),
      `namespace ${namespace} (log: ${serverLog})`,
      60_000,
    );
    await waitFor(
      settled(() => registerSearchAttributes(address, namespace, workerTls)),
      `search attributes (log: ${serverLog})`,
      60_000,
    );
    await waitFor(
      () => searchAttributesUsable(address, namespace, workerTls),
      'search attributes to be queryable',
      120_000,
    );

    return {
      address,
      namespace,
      postgres,
      auditUrl: postgres.url,
      serverLog,
      serverBinary: tools.server,
      serverEnv,
      tls,
      workerTls,
      serverPid: () => server?.pid,
      async restartServer(outageMs = 0) {
        await stopServer();
        if (outageMs > 0) await new Promise((r) => setTimeout(r, outageMs));
        await startServer();
      },
      async stop() {
        process.removeListener('exit', killOnExit);
        await stopServer();
        await postgres.stop();
      },
    };
  } catch (err) {
    server?.kill('SIGKILL');
    await postgres.stop();
    throw err;
  }
}
