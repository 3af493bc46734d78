/**
 * The hypervisor's worker: the session and saga workflows and every activity,
 * on one task queue. The workflow bundle is built once per process and shared.
 */
import {
  bundleWorkflowCode,
  NativeConnection,
  Worker,
  type WorkerOptions,
  type WorkflowBundle,
} from '@temporalio/worker';
import { Client } from '@temporalio/client';
import { createActivities } from '../activities';
import type { AuditStore } from '../src/store/types';
import { ensureRetentionSchedule } from './schedules';
import { tracingParts, type WorkerTracing } from './telemetry';
import type { ToolPolicy } from '../activities/toolPolicy';
import type { McpClients } from '../activities/mcpClients';
import { loadHypervisorKey, type HypervisorKey } from '../src/store/treeHeads';
import { tlsFromEnv } from '../src/node/connectionTls';
import type { DeploymentVersion } from './config';

const bundles = new Map<string, Promise<WorkflowBundle>>();

/**
 * Bundles workflows/ once per process (webpack is slow; every Worker in this
 * process reuses the result). A worker that traces gets a bundle with the
 * tracing interceptors (workflows/tracing.ts); an untraced bundle has none, so a
 * worker that does not trace pays nothing for it. Every bundle has the own-run
 * guard (N24), and shares zod and @noble/hashes between its runs (sharedWorkflowModules). A versioned worker's bundle declares each workflow's versioning
 * behaviour (workflows/versioned.ts).
 */
export function workflowBundle(traced = false, versioned = false): Promise<WorkflowBundle> {
  const key = `${traced}/${versioned}`;
  let bundle = bundles.get(key);
  if (!bundle) {
    bundle = bundleWorkflowCode({
      workflowsPath: require.resolve(versioned ? '../workflows/versioned' : '../workflows'),
      workflowInterceptorModules: workflowInterceptorModules(traced),
      preloadModules: sharedWorkflowModules(),
      logger: quietBundlerLogger,
    });
    bundles.set(key, bundle);
  }
  return bundle;
}

/**
 * The workflow interceptors of every hypervisor bundle: a tracing worker's (workflows/tracing.ts), then — innermost,
 * nearest the workflow — the own-run guard (workflows/ownRun.ts, N24).
 */
export function workflowInterceptorModules(traced = false): string[] {
  return [...(traced ? [require.resolve('../workflows/tracing')] : []), require.resolve('../workflows/ownRun')];
}

/**
 * The modules every workflow run in a worker thread shares instead of evaluating its own copy (workflows/shared.ts:
 * zod and @noble/hashes; issue 20, worker CPU per saga), and the sandbox's stack depth (workflows/stackFrames.ts).
 */
export function sharedWorkflowModules(): string[] {
  return [require.resolve('../workflows/shared'), require.resolve('../workflows/stackFrames')];
}

/** The bundler's logger for workers and tests that bundle workflows: warnings and errors only. */
export const quietBundlerLogger = {
  log() {},
  trace() {},
  debug() {},
  info() {},
  warn: (message: string) => console.warn(message),
  error: (message: string) => console.error(message),
};

/** Connects, retrying while the server is not up yet (e.g. started a moment ago). */
export async function connectWithRetry(
  address: string,
  log: (line: string) => void = console.error,
  timeoutMs = 120_000,
): Promise<NativeConnection> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 1; ; attempt++) {
    try {
      // The cluster's mutual TLS (the worker's certificate) when TEMPORAL_TLS_* name the files.
      return await NativeConnection.connect({ address, tls: tlsFromEnv() });
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`could not reach Temporal at ${address}: ${(err as Error).message}`);
      if (attempt === 1) log(`Waiting for Temporal at ${address} …`);
      await new Promise((r) => setTimeout(r, Math.min(5000, 250 * attempt)));
    }
  }
}

export interface HypervisorWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  identity?: string;
  /** Where sessions keep their trails (src/store: openAuditStore). The caller closes it after the worker stops. */
  store: AuditStore;
  /** Create the audit retention schedule when absent (default true). */
  retentionSchedule?: boolean;
  /** Trace sessions, sagas, gates, steps and compensations into a span processor (worker/telemetry.ts); unset, none. */
  tracing?: WorkerTracing;
  /** The worker's rule for HTTP tools (Config.toolPolicy, from HV_TOOL_*); unset, no HTTP tool runs. */
  toolPolicy?: ToolPolicy;
  /** The clients of the MCP servers it calls tools at (Config.mcpServers, HV_MCP_SERVERS); the caller closes them after the worker stops. Unset, none. */
  mcp?: McpClients;
  /**
   * The key that signs trails' tree heads (issue 24, N14); unset, the one HV_HYPERVISOR_KEY names,
   * else <HV_DATA_DIR>/hypervisor.key (written at the first start).
   */
  hypervisorKey?: HypervisorKey;
  /** How long a task waits on this worker's sticky queue before any worker may take it (HV_STICKY_QUEUE_TIMEOUT_MS); unset, the SDK's 10 s. */
  stickyQueueTimeoutMs?: number;
  /** The worker's deployment version (HV_DEPLOYMENT_NAME, HV_BUILD_ID; docs/UPGRADES.md); unset, unversioned. */
  deployment?: DeploymentVersion;
  /** The workflows it hosts, bundled (default: workflows/, built once per process). */
  workflowBundle?: WorkflowBundle;
}

/**
 * Worker Deployment Versioning for a worker of `version`: sagas stay on the version they started on, sessions
 * move to the current version (each workflow's behaviour is declared in workflows/index.ts; the default covers
 * any other).
 */
export function deploymentOptions(version: DeploymentVersion): WorkerOptions['workerDeploymentOptions'] {
  return { version, useWorkerVersioning: true, defaultVersioningBehavior: 'AUTO_UPGRADE' };
}

export async function createHypervisorWorker(options: HypervisorWorkerOptions): Promise<Worker> {
  const tracing = options.tracing && tracingParts(options.tracing);
  const client = new Client({
    connection: options.connection,
    namespace: options.namespace,
    ...(tracing ? { interceptors: tracing.clientInterceptors } : {}),
  });
  if (options.retentionSchedule ?? true) await ensureRetentionSchedule(client, options.taskQueue);
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    workflowBundle:
      options.workflowBundle ?? (await workflowBundle(tracing !== undefined, options.deployment !== undefined)),
    // Some activities read workflows by id (SPEC §11.2): they share the worker's connection.
    activities: createActivities(
      client,
      options.store,
      tracing?.tracer,
      options.toolPolicy,
      options.hypervisorKey ?? loadHypervisorKey(),
      options.mcp,
    ),
    ...(tracing ? { interceptors: { activity: tracing.activityInterceptors }, sinks: tracing.sinks } : {}),
    ...(options.identity ? { identity: options.identity } : {}),
    ...(options.stickyQueueTimeoutMs ? { stickyQueueScheduleToStartTimeout: options.stickyQueueTimeoutMs } : {}),
    ...(options.deployment ? { workerDeploymentOptions: deploymentOptions(options.deployment) } : {}),
  });
}
