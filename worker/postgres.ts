/**
 * A PostgreSQL server of our own from Debian's binaries: for tests a fresh
 * data directory in a temp dir (removed on stop); for the local cluster
 * (scripts/cluster.ts) a data directory that outlives it. Trust
 * authentication on 127.0.0.1 only, a free port unless one is given, the unix
 * socket beside the data. initdb refuses to run as root, so as root the
 * binaries run as the `postgres` user (runuser).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { freePort } from './ports';

export interface TestPostgres {
  /** postgres://postgres@127.0.0.1:<port>/<database> */
  url: string;
  port: number;
  /** postgres://postgres@127.0.0.1:<port> (append /<database>) */
  base: string;
  /** A URL for another database on the same server, created now. */
  createDatabase(name: string): Promise<string>;
  stop(): Promise<void>;
}

/** The PostgreSQL major version the project runs (Debian bookworm's; docker-compose.yml's image too). */
export const POSTGRES_MAJOR = '15';

/** The bin directory of Debian's PostgreSQL: POSTGRES_MAJOR when present, else the newest installed. */
export function postgresBinDir(): string | null {
  const root = '/usr/lib/postgresql';
  const preferred = path.join(root, POSTGRES_MAJOR, 'bin');
  if (fs.existsSync(path.join(preferred, 'initdb'))) return preferred;
  let versions: string[] = [];
  try {
    versions = fs.readdirSync(root).filter((v) => fs.existsSync(path.join(root, v, 'bin', 'initdb')));
  } catch {
    return null;
  }
  versions.sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? null : path.join(root, versions[0], 'bin');
}

const asRoot = process.getuid?.() === 0;

/** Run a PostgreSQL binary, as the postgres user when we are root. */
function run(bin: string, args: string[], timeoutMs = 60_000): string {
  const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
  const r = spawnSync(file, argv, { encoding: 'utf8', timeout: timeoutMs });
  if (r.error) throw r.error;
  if (r.status !== 0)
    throw new Error(`${path.basename(bin)} failed (${r.status ?? r.signal}): ${r.stderr || r.stdout}`);
  return r.stdout;
}

export interface PostgresOptions {
  /** Off by default: a throwaway server needs no durability. */
  fsync?: boolean;
  /** A folder that outlives the server (initialised when empty); default: a temp dir removed on stop. */
  root?: string;
  port?: number;
  /** The database `url` names, created when absent (default hv_audit_test). */
  database?: string;
}

export async function startPostgres(options: PostgresOptions = {}): Promise<TestPostgres> {
  const bin = postgresBinDir();
  if (bin === null)
    throw new Error('PostgreSQL is not installed: no /usr/lib/postgresql/*/bin/initdb (apt-get install postgresql)');
  const keep = options.root !== undefined;
  const tmp = keep ? path.resolve(options.root!) : fs.mkdtempSync(path.join(os.tmpdir(), 'hv-pg-'));
  const dataDir = path.join(tmp, 'data');
  const socketDir = path.join(tmp, 'sock');
  const logFile = path.join(tmp, 'postgres.log');
  fs.mkdirSync(socketDir, { recursive: true });
  if (asRoot) {
    execFileSync('chown', ['-R', 'postgres:postgres', tmp]);
    if (spawnSync('runuser', ['-u', 'postgres', '--', 'test', '-w', tmp]).status !== 0) {
      throw new Error(
        `PostgreSQL runs as the postgres user, which cannot reach ${tmp}: every folder above it must be searchable (chmod o+x)`,
      );
    }
  }
  const pgCtl = path.join(bin, 'pg_ctl');
  let started = false;
  const cleanup = () => {
    process.removeListener('exit', cleanup);
    if (started) stopServer(pgCtl, dataDir);
    if (!keep) fs.rmSync(tmp, { recursive: true, force: true });
  };
  // A run that exits without its after hooks (process.exit on a signal) leaves no server behind.
  process.once('exit', cleanup);
  try {
    if (!fs.existsSync(path.join(dataDir, 'PG_VERSION'))) {
      run(
        path.join(bin, 'initdb'),
        ['-D', dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync'],
        120_000,
      );
    }
    const port = options.port ?? (await freePort());
    const serverOptions = [
      `-p ${port}`,
      `-k ${socketDir}`,
      '-c listen_addresses=127.0.0.1',
      ...(options.fsync === true ? [] : ['-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off']),
    ].join(' ');
    started = true;
    run(pgCtl, ['start', '-D', dataDir, '-l', logFile, '-w', '-t', '60', '-o', serverOptions], 90_000);
    const base = `postgres://postgres@127.0.0.1:${port}`;
    await waitForConnections(`${base}/postgres`, 30_000, logFile);
    /** Creates the database unless it exists; its URL. */
    const createDatabase = async (name: string): Promise<string> => {
      const admin = new Client({ connectionString: `${base}/postgres` });
      await admin.connect();
      try {
        const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
        if (exists.rowCount === 0) await admin.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
      } finally {
        await admin.end();
      }
      return `${base}/${encodeURIComponent(name)}`;
    };
    const url = await createDatabase(options.database ?? 'hv_audit_test');
    let stopped = false;
    return {
      url,
      port,
      base,
      createDatabase,
      async stop() {
        if (stopped) return;
        stopped = true;
        cleanup();
      },
    };
  } catch (err) {
    const log = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').slice(-2000) : '';
    cleanup();
    throw log === '' ? err : new Error(`${(err as Error).message}\n--- postgres log ---\n${log}`);
  }
}

/** Until a connection succeeds (pg_ctl -w has already waited for the postmaster to be ready). */
async function waitForConnections(url: string, timeoutMs: number, logFile: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = new Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
    try {
      await client.connect();
      await client.query('SELECT 1');
      await client.end();
      return;
    } catch (err) {
      await client.end().catch(() => {});
      if (Date.now() > deadline)
        throw new Error(`PostgreSQL did not accept connections: ${(err as Error).message} (log: ${logFile})`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** pg_ctl stop -m fast; if the postmaster is still there, kill it by its PID. */
function stopServer(pgCtl: string, dataDir: string): void {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  let pid: number | null = null;
  try {
    pid = Number(fs.readFileSync(pidFile, 'utf8').split('\n')[0]);
  } catch {
    return; // never started, or already stopped
  }
  try {
    run(pgCtl, ['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', '30'], 45_000);
  } catch {
    if (pid !== null && Number.isInteger(pid) && pid > 0) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}
