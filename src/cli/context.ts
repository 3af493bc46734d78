/**
 * What every command gets: the connection settings (global flags over the
 * environment over the defaults), a lazily connected HypervisorClient whose
 * calls each have a deadline, and the output mode (--json or tables).
 */
import { Client, Connection } from '@temporalio/client';
import { DEFAULT_TASK_QUEUE, HypervisorClient } from '../client';
import type { Connectivity } from './errors';
import { openAuditStore, type AuditStore } from '../store';
import { KeyRing } from '../client/keys';
import { isHypervisorError } from '../core/errors';
import { UsageError } from './errors';
import { tlsFromEnv } from '../node/connectionTls';

export interface GlobalValues {
  json?: boolean;
  address?: string;
  namespace?: string;
  'task-queue'?: string;
  timeout?: string;
  /** did:key files (`--key`, repeatable): every request is signed as the DIDs it speaks for. */
  key?: string[];
}

export const DEFAULT_TIMEOUT_SECONDS = 20;

export class CliContext {
  readonly json: boolean;
  readonly conn: Connectivity;
  private hv: HypervisorClient | undefined;
  private auditStore: Promise<AuditStore> | undefined;
  /** The keys of --key, read before anything is sent; undefined without --key. */
  readonly signer: KeyRing | undefined;

  constructor(
    globals: GlobalValues,
    timeoutSeconds: number,
    readonly stdout: NodeJS.WriteStream = process.stdout,
    readonly stderr: NodeJS.WriteStream = process.stderr,
  ) {
    this.json = Boolean(globals.json);
    this.conn = {
      address: globals.address || process.env.TEMPORAL_ADDRESS || `127.0.0.1:${process.env.TEMPORAL_PORT || 7233}`,
      namespace: globals.namespace || process.env.TEMPORAL_NAMESPACE || 'default',
      taskQueue: globals['task-queue'] || process.env.HV_TASK_QUEUE || DEFAULT_TASK_QUEUE,
      timeoutSeconds,
    };
    const keys = globals.key ?? [];
    try {
      this.signer = keys.length ? KeyRing.fromFiles(keys) : undefined;
    } catch (err) {
      if (isHypervisorError(err) || (err as NodeJS.ErrnoException).code)
        throw new UsageError(`--key: ${(err as Error).message}`, 'make a key with `hv keys new FILE`');
      throw err;
    }
  }

  /** The client, connected on first use (commands that work offline never connect). */
  async client(): Promise<HypervisorClient> {
    if (!this.hv) {
      const connection = await Connection.connect({
        address: this.conn.address,
        connectTimeout: this.conn.timeoutSeconds * 1000,
        tls: tlsFromEnv(),
      });
      this.hv = new HypervisorClient(
        new Client({ connection, namespace: this.conn.namespace }),
        this.conn.taskQueue,
        await this.store(),
        this.signer,
      );
    }
    return this.hv;
  }

  /** The audit store (HV_AUDIT_DATABASE_URL, else the data dir's SQLite file), opened on first use; needs no Temporal. */
  store(): Promise<AuditStore> {
    this.auditStore ??= openAuditStore();
    return this.auditStore;
  }

  /** Run one call against Temporal with the --timeout deadline. */
  async call<T>(fn: () => Promise<T>): Promise<T> {
    const hv = await this.client();
    return hv.client.connection.withDeadline(Date.now() + this.conn.timeoutSeconds * 1000, fn);
  }

  async close(): Promise<void> {
    if (this.hv) await this.hv.close().catch(() => undefined);
    this.hv = undefined;
    if (this.auditStore) await (await this.auditStore.catch(() => undefined))?.close().catch(() => undefined);
    this.auditStore = undefined;
  }

  /** The result: JSON only with --json, else the readable form. */
  print(value: unknown, readable: () => string): void {
    this.stdout.write(this.json ? JSON.stringify(value, null, 2) + '\n' : readable() + '\n');
  }

  /** Progress and notes for people, on stderr; silent with --json. */
  note(line: string): void {
    if (!this.json) this.stderr.write(line + '\n');
  }
}
