/**
 * Open the audit store the environment names: PostgreSQL when
 * HV_AUDIT_DATABASE_URL (or options.url) is a postgres:// URL, else the
 * embedded SQLite file <data dir>/audit.sqlite (HV_DATA_DIR, default
 * <project>/.temporal, as the worker's config).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PostgresAuditStore, redactedUrl } from './postgres';
import { SqliteAuditStore } from './sqlite';
import type { AuditStore } from './types';
import { useNodeCrypto } from '../node/hashNode';

export * from './types';
export { PostgresAuditStore } from './postgres';
export { SqliteAuditStore } from './sqlite';

/** The project root, resolved as worker/config.ts resolves it (this file is two levels below). */
const PROJECT_ROOT = path.resolve(__dirname, '..', '..');

export const AUDIT_DATABASE_URL_VAR = 'HV_AUDIT_DATABASE_URL';

export interface OpenAuditStoreOptions {
  /** A postgres:// or postgresql:// URL; default HV_AUDIT_DATABASE_URL. */
  url?: string;
  /** Where the SQLite file lives when no URL is given; default HV_DATA_DIR or <project>/.temporal. */
  dataDir?: string;
}

export async function openAuditStore(options: OpenAuditStoreOptions = {}): Promise<AuditStore> {
  // The store checks every delta's hash: in plain Node, with node:crypto (src/core/hash.ts).
  useNodeCrypto();
  const fromOption = options.url !== undefined && options.url !== '';
  const url = fromOption ? options.url : process.env[AUDIT_DATABASE_URL_VAR];
  if (url !== undefined && url !== '')
    return openPostgres(url, fromOption ? 'the audit store URL' : AUDIT_DATABASE_URL_VAR);
  const dataDir = path.resolve(PROJECT_ROOT, options.dataDir || process.env.HV_DATA_DIR || '.temporal');
  fs.mkdirSync(dataDir, { recursive: true });
  return new SqliteAuditStore(path.join(dataDir, 'audit.sqlite'));
}

async function openPostgres(url: string, source: string): Promise<AuditStore> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`${source} is not a URL (expected postgres://user:password@host:port/database)`);
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new Error(`${source} must be a postgres:// or postgresql:// URL, got a ${parsed.protocol}// URL`);
  }
  try {
    return await PostgresAuditStore.open(url);
  } catch (err) {
    const reason = err instanceof Error ? err.message || (err as NodeJS.ErrnoException).code || err.name : String(err);
    throw new Error(`${source}: cannot open the audit store at ${redactedUrl(parsed.href)}: ${reason}`, { cause: err });
  }
}

/** The store as people name it: its kind and where it is. */
export function storeName(store: Pick<AuditStore, 'kind' | 'location'>): string {
  return `${store.kind === 'sqlite' ? 'SQLite' : 'PostgreSQL'} ${store.location}`;
}
