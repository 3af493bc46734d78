/** Every activity the hypervisor's worker hosts. Some read workflows by id, so they need a client; the audit ones, the store. */
import type { Client } from '@temporalio/client';
import type { Tracer } from '@opentelemetry/api';
import { stepActivities } from './steps';
import { sessionActivities } from './sessions';
import { sagaHistoryActivities } from './sagaHistory';
import { scoreTrust, reportToTrustScorer, measureDrift, anchorCommitment } from './integrations';
import { auditActivities } from './audit';
import type { AuditStore } from '../src/store/types';
import { useNodeCrypto } from '../src/node/hashNode';
import { NO_HTTP_TOOLS, type ToolPolicy } from './toolPolicy';
import type { HypervisorKey } from '../src/store/treeHeads';
import type { McpClients } from './mcpClients';

/**
 * `tracer`: set when the worker traces, for the spans activities open
 * themselves. `toolPolicy`: the worker's own rule for HTTP tools — the origins
 * it calls, private addresses, the answer size limit (worker/config.ts reads
 * it from HV_TOOL_* at start); by default no HTTP tool runs. `hypervisorKey`:
 * the worker's own key, which signs the trail's tree heads (issue 24, N14).
 * `mcp`: the clients of the MCP servers the worker configures (none by default).
 */
export function createActivities(
  client: Client,
  store: AuditStore,
  tracer?: Tracer,
  toolPolicy: ToolPolicy = NO_HTTP_TOOLS,
  hypervisorKey?: HypervisorKey,
  mcp?: McpClients,
) {
  // Activities run in plain Node: their hashes come from node:crypto (src/hash.ts).
  useNodeCrypto();
  const sessions = sessionActivities(client);
  return {
    ...auditActivities(store, hypervisorKey),
    ...stepActivities(
      (sagaWorkflowId, task) => sessions.checkStepGate(sagaWorkflowId, task.stepId),
      tracer,
      toolPolicy,
      mcp,
      (task) =>
        sessions.queryStepGrant({
          sessionId: task.sessionId,
          sagaId: task.sagaId,
          stepId: task.stepId,
          digest: task.digest,
        }),
    ),
    readStepGrant: sessions.readStepGrant,
    readTurn: sessions.readTurn,
    readSagaOutcome: sessions.readSagaOutcome,
    awaitHold: sessions.awaitHold,
    readOperatorDecision: sessions.readOperatorDecision,
    readSagaAwaiting: sessions.readSagaAwaiting,
    ...sagaHistoryActivities(client),
    scoreTrust,
    reportToTrustScorer,
    measureDrift,
    anchorCommitment,
  };
}

export type HypervisorActivities = ReturnType<typeof createActivities>;
export type { StepTask, CompensationTask } from './steps';
export type { SagaHistoryRead, StepInHistory } from './sagaHistory';
export type { DriftRequest } from './integrations';
export type { ToolPolicy } from './toolPolicy';
