/**
 * Mutual TLS to the Temporal frontend, from files (issue 24, "the cluster"):
 * the cluster (`npm run cluster`, docker-compose.yml) requires a client
 * certificate signed by its CA, and names each caller by it — the worker's
 * (CN=hv-worker) may do anything, an agent's may send updates, signals and
 * queries (deploy/temporal-server/policy.go). The variables are the Temporal
 * CLI's own names, so `temporal` and the hypervisor read the same settings:
 *
 *   TEMPORAL_TLS_CLIENT_CERT_PATH   the client certificate (PEM)
 *   TEMPORAL_TLS_CLIENT_KEY_PATH    its key (PEM)
 *   TEMPORAL_TLS_SERVER_CA_CERT_PATH  the CA the frontend's certificate is checked against
 *   TEMPORAL_TLS_SERVER_NAME        the name in the frontend's certificate (the cluster's: hv-temporal)
 *
 * None set: plain TCP (the dev server). Some but not all of the files: an error.
 */
import * as fs from 'node:fs';
import type { TLSConfig } from '@temporalio/client';

export interface TlsFiles {
  /** Client certificate and key (PEM). */
  cert: string;
  key: string;
  /** The CA that signed the frontend's certificate (PEM). */
  ca: string;
  /** The name the frontend's certificate carries, when it is not the address's host. */
  serverName?: string;
}

/** The SDK's TLS options (Connection.connect / NativeConnection.connect `tls`) for these files. */
export function tlsConfig(files: TlsFiles): TLSConfig {
  return {
    clientCertPair: { crt: fs.readFileSync(files.cert), key: fs.readFileSync(files.key) },
    serverRootCACertificate: fs.readFileSync(files.ca),
    ...(files.serverName ? { serverNameOverride: files.serverName } : {}),
  };
}

/** The files the environment names, or undefined when it names none. */
export function tlsFilesFromEnv(): TlsFiles | undefined {
  const cert = process.env.TEMPORAL_TLS_CLIENT_CERT_PATH || undefined;
  const key = process.env.TEMPORAL_TLS_CLIENT_KEY_PATH || undefined;
  const ca = process.env.TEMPORAL_TLS_SERVER_CA_CERT_PATH || undefined;
  const serverName = process.env.TEMPORAL_TLS_SERVER_NAME || undefined;
  if (!cert && !key && !ca) return undefined;
  if (!cert || !key || !ca) {
    throw new Error(
      'TLS to Temporal needs all three of TEMPORAL_TLS_CLIENT_CERT_PATH, TEMPORAL_TLS_CLIENT_KEY_PATH and TEMPORAL_TLS_SERVER_CA_CERT_PATH',
    );
  }
  return { cert, key, ca, serverName };
}

/** The SDK's TLS options the environment asks for; undefined: plain TCP. */
export function tlsFromEnv(): TLSConfig | undefined {
  const files = tlsFilesFromEnv();
  return files && tlsConfig(files);
}

/** The environment that makes a process (a worker, `hv`, the typed client) connect with these files. */
export function tlsEnv(files: TlsFiles): Record<string, string> {
  return {
    TEMPORAL_TLS_CLIENT_CERT_PATH: files.cert,
    TEMPORAL_TLS_CLIENT_KEY_PATH: files.key,
    TEMPORAL_TLS_SERVER_CA_CERT_PATH: files.ca,
    ...(files.serverName ? { TEMPORAL_TLS_SERVER_NAME: files.serverName } : {}),
  };
}
