import * as path from 'node:path';
import { toolPolicyFromEnv } from '../activities/toolPolicy';
import { mcpServersFromEnv } from '../activities/mcpClients';

/** Where the project lives, so every script resolves data and tools the same way. */
export const PROJECT_ROOT = path.resolve(__dirname, '..');

function intFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0 || value > 65535) {
    throw new Error(`${name} must be a port number (1–65535), got "${raw}"`);
  }
  return value;
}

function hostPortFromEnv(name: string): string | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const port = Number(raw.slice(raw.lastIndexOf(':') + 1));
  if (!raw.includes(':') || !Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new Error(`${name} must be host:port (e.g. 0.0.0.0:9464), got "${raw}"`);
  }
  return raw;
}

/**
 * HV_STICKY_QUEUE_TIMEOUT_MS: how long a workflow task waits on this worker's sticky queue (the worker that
 * holds the run in its cache) before the server gives it to any worker — the SDK's
 * `stickyQueueScheduleToStartTimeout`. Unset, the SDK's default (10 s). A worker that stops answering (paused,
 * partitioned) delays each of its runs' next task by this much.
 */
export function stickyQueueTimeoutFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env.HV_STICKY_QUEUE_TIMEOUT_MS;
  if (raw === undefined || raw === '') return undefined;
  const ms = Number(raw);
  if (!Number.isInteger(ms) || ms < 1 || ms > 3_600_000) {
    throw new Error(`HV_STICKY_QUEUE_TIMEOUT_MS must be milliseconds (1–3600000), got "${raw}"`);
  }
  return ms;
}

/** A worker's deployment version (Worker Deployment Versioning): the deployment it belongs to and its build. */
export interface DeploymentVersion {
  deploymentName: string;
  buildId: string;
}

const DEPLOYMENT_PART = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

/**
 * HV_DEPLOYMENT_NAME and HV_BUILD_ID: the worker's deployment version (docs/UPGRADES.md). Both or neither;
 * unset, the worker is unversioned (every worker of the task queue runs every workflow, patches alone keep
 * histories replaying).
 */
export function deploymentFromEnv(env: NodeJS.ProcessEnv = process.env): DeploymentVersion | undefined {
  const deploymentName = env.HV_DEPLOYMENT_NAME?.trim() || undefined;
  const buildId = env.HV_BUILD_ID?.trim() || undefined;
  if (!deploymentName && !buildId) return undefined;
  if (!deploymentName || !buildId)
    throw new Error(
      `HV_DEPLOYMENT_NAME and HV_BUILD_ID are set together (a deployment version is both), got only ${deploymentName ? 'HV_DEPLOYMENT_NAME' : 'HV_BUILD_ID'}`,
    );
  for (const [name, value] of [
    ['HV_DEPLOYMENT_NAME', deploymentName],
    ['HV_BUILD_ID', buildId],
  ] as const) {
    if (!DEPLOYMENT_PART.test(value))
      throw new Error(
        `${name} must be 1–200 letters, digits, '.', '_' or '-' (starting with a letter or digit), got "${value}"`,
      );
  }
  return { deploymentName, buildId };
}

/** Settings read from the environment, with the defaults documented in README.md. */
export function loadConfig() {
  const address = process.env.TEMPORAL_ADDRESS || `127.0.0.1:${intFromEnv('TEMPORAL_PORT', 7233)}`;
  const dataDir = path.resolve(PROJECT_ROOT, process.env.HV_DATA_DIR || '.temporal');
  return {
    /** Set TEMPORAL_ADDRESS to use a server you run; otherwise we start a local dev server there. */
    address,
    /** The gRPC port a local dev server listens on: the address's. */
    port: Number(address.slice(address.lastIndexOf(':') + 1)),
    addressGiven: Boolean(process.env.TEMPORAL_ADDRESS),
    namespace: process.env.TEMPORAL_NAMESPACE || 'default',
    taskQueue: process.env.HV_TASK_QUEUE || 'agent-hypervisor',
    uiPort: intFromEnv('TEMPORAL_UI_PORT', 8233),
    dataDir,
    /** The local dev server's SQLite database: workflows survive a restart of the server. */
    dbFile: path.join(dataDir, 'hypervisor.db'),
    /** host:port where the worker serves Prometheus metrics at /metrics (SDK and hypervisor); unset, none. */
    metricsAddress: hostPortFromEnv('HV_METRICS_ADDRESS'),
    /** Where traces go by OTLP/HTTP (the standard variables; the exporter reads them itself); unset, no tracing. */
    otlpTracesEndpoint:
      process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || process.env.OTEL_EXPORTER_OTLP_ENDPOINT || undefined,
    serviceName: process.env.OTEL_SERVICE_NAME || 'agent-hypervisor-worker',
    /**
     * The worker's own rule for HTTP tools (issue 24, N3), validated here once:
     * HV_TOOL_ORIGINS — the only origins it calls, whatever a session's
     * config allows (default none: HTTP tools are off until the operator
     * lists them, because session configs are unsigned and any client could
     * name any host); HV_TOOL_ALLOW_PRIVATE=1 — tools may be at private,
     * loopback, link-local … addresses (default no); HV_TOOL_MAX_RESPONSE_BYTES
     * (default 256 KiB).
     */
    toolPolicy: toolPolicyFromEnv(process.env),
    /**
     * HV_MCP_SERVERS (docs/MCP.md): the MCP servers this worker calls tools at, a JSON object
     * `{name: {command, args?, env?, cwd?, stderr?} | {url}}` or `@file`; unset, none. Only these: a session names one, never adds one.
     */
    mcpServers: mcpServersFromEnv(process.env.HV_MCP_SERVERS),
    /** HV_STICKY_QUEUE_TIMEOUT_MS (stickyQueueTimeoutFromEnv); undefined: the SDK's default. */
    stickyQueueTimeoutMs: stickyQueueTimeoutFromEnv(),
    /** HV_DEPLOYMENT_NAME + HV_BUILD_ID (deploymentFromEnv); undefined: an unversioned worker. */
    deployment: deploymentFromEnv(),
  };
}
export type Config = ReturnType<typeof loadConfig>;
