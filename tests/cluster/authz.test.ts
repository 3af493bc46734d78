/**
 * Issue 24, "the cluster: authentication and authorization": the cluster's
 * Temporal server (deploy/temporal-server) speaks mutual TLS only and names
 * each caller by its certificate (deploy/temporal-server/policy.go). On the
 * real cluster, with a worker on the worker's certificate:
 *
 * - an agent's client (CN=hv-agent) may start a plain session and send it
 *   updates, signals and queries, and read it;
 * - its terminate, cron start, signal-with-start, reset, cancel, schedule,
 *   saga start and task poll are refused (PERMISSION_DENIED, with the reason);
 * - the worker's terminate, cron start and signal-with-start are allowed, and
 *   its schedule runs (Temporal's system worker has a certificate of its own);
 * - a client without a certificate, or with one another CA signed (even
 *   CN=hv-worker), cannot connect.
 *
 * The policy's table itself is unit-tested in Go: deploy/temporal-server
 * policy_test.go, run here too (`go test`).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { status as grpcStatus } from '@grpc/grpc-js';
import Long from 'long';
import { Lab, waitUntil } from '../durability/harness';
import { CLUSTER_CERTS } from '../../worker/cluster';
import { HypervisorClient } from '../../src/client';
import { tlsConfig } from '../../src/node/connectionTls';
import { goBinary } from '../../worker/goBuild';
import { TEMPORAL_SERVER_SOURCE } from '../../worker/temporalServer';
import {
  SESSION_WORKFLOW,
  SAGA_WORKFLOW,
  sessionWorkflowId,
  summaryQuery,
  sagaEndedSignal,
} from '../../workflows/definitions';

/** The gRPC status of a refused call, wherever the SDK put it. */
function grpcCode(err: unknown): number | undefined {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined; e; e = e.cause as typeof e) {
    if (typeof e.code === 'number') return e.code;
  }
  return undefined;
}

function message(err: unknown): string {
  const parts: string[] = [];
  for (let e = err as { message?: string; details?: string; cause?: unknown } | undefined; e; e = e.cause as typeof e) {
    parts.push(`${e.message ?? ''} ${e.details ?? ''}`);
  }
  return parts.join(' | ');
}

/** Resolves with the error the call was refused with; fails when the call succeeds or fails otherwise. */
async function refused(what: string, call: () => Promise<unknown>, reason?: RegExp): Promise<void> {
  let error: unknown;
  try {
    await call();
  } catch (err) {
    error = err;
  }
  assert.ok(error, `${what} was allowed`);
  if (process.env.HV_AUTHZ_VERBOSE) console.log(`      ${what}: ${message(error)}`);
  assert.equal(grpcCode(error), grpcStatus.PERMISSION_DENIED, `${what}: ${message(error)}`);
  if (reason) assert.match(message(error), reason, what);
}

describe('cluster: mutual TLS and the access policy (issue 24)', function () {
  this.timeout(600_000);
  const lab = Lab.forSuite('cluster', 1);
  let agentConnection: Connection;
  let agent: Client;
  let agentHv: HypervisorClient;
  const run = Date.now().toString(36);
  // A task queue no worker polls: the worker's own starts below run no session code.
  const idleQueue = `hv-authz-idle-${run}`;

  before(async function () {
    this.timeout(60_000);
    agentConnection = await Connection.connect({
      address: lab.address,
      tls: tlsConfig(lab.cluster!.tls.client(CLUSTER_CERTS.agent)),
    });
    agent = new Client({ connection: agentConnection });
    agentHv = new HypervisorClient(agent, lab.taskQueue, lab.store);
  });
  after(async () => {
    await agentConnection?.close().catch(() => undefined);
  });

  it('the policy table passes its Go unit tests (deploy/temporal-server: go test)', function () {
    this.timeout(600_000);
    const r = spawnSync(goBinary('go test'), ['test', '-count=1', '.'], {
      cwd: TEMPORAL_SERVER_SOURCE,
      encoding: 'utf8',
      timeout: 600_000,
      env: {
        ...process.env,
        GOTOOLCHAIN: 'local',
        GOFLAGS: '-mod=readonly',
        CGO_ENABLED: process.env.CGO_ENABLED ?? '0',
      },
    });
    assert.equal(r.status, 0, `go test failed:\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /^ok\s/m);
  });

  it("an agent's client starts a plain session and sends it updates, signals and queries", async () => {
    const session = await agentHv.createSession({
      sessionId: `authz-${run}`,
      creatorDid: 'did:mesh:admin',
      config: {},
    });
    await session.join({ agentDid: 'did:mesh:alpha', sigmaRaw: 0.8, actions: [] });
    const handle = agent.workflow.getHandle(sessionWorkflowId(`authz-${run}`));
    await handle.signal(sagaEndedSignal, { sagaId: 'no-such-saga' });
    const summary = await handle.query(summaryQuery);
    assert.equal(summary.sessionId, `authz-${run}`);
    assert.deepEqual(
      summary.participants.map((p) => p.did),
      ['did:mesh:alpha'],
      "the agent's join update was applied",
    );
    const described = await handle.describe();
    assert.equal(described.type, SESSION_WORKFLOW);
    const listed = await agent.workflowService.countWorkflowExecutions({
      namespace: 'default',
      query: `WorkflowId = '${sessionWorkflowId(`authz-${run}`)}'`,
    });
    assert.equal(Number(listed.count), 1);
  });

  it("refuses an agent's terminate, cron start, signal-with-start, reset, cancel, schedule, saga start and task poll", async () => {
    const id = sessionWorkflowId(`authz-${run}`);
    const handle = agent.workflow.getHandle(id);
    await refused('terminate', () => handle.terminate('an agent ends the session'), /worker only/);
    await refused('cancel', () => handle.cancel());
    const described = await lab.client.workflow.getHandle(id).describe();
    await refused('reset', () =>
      agent.workflowService.resetWorkflowExecution({
        namespace: 'default',
        workflowExecution: { workflowId: id, runId: described.runId },
        workflowTaskFinishEventId: Long.fromNumber(3),
        requestId: `reset-${run}`,
        reason: 'rewind',
      }),
    );
    await refused(
      'cron start',
      () =>
        agent.workflow.start(SESSION_WORKFLOW, {
          taskQueue: lab.taskQueue,
          workflowId: sessionWorkflowId(`authz-cron-${run}`),
          cronSchedule: '* * * * *',
          args: [{ sessionId: `authz-cron-${run}`, creatorDid: 'did:mesh:admin', config: {} }],
        }),
      /cron/,
    );
    await refused(
      'signal-with-start',
      () =>
        agent.workflow.signalWithStart(SESSION_WORKFLOW, {
          taskQueue: lab.taskQueue,
          workflowId: sessionWorkflowId(`authz-sws-${run}`),
          signal: sagaEndedSignal,
          signalArgs: [{ sagaId: 'x' }],
          args: [{ sessionId: `authz-sws-${run}`, creatorDid: 'did:mesh:admin', config: {} }],
        }),
      /worker only/,
    );
    await refused(
      'start that terminates the running session',
      () =>
        agent.workflow.start(SESSION_WORKFLOW, {
          taskQueue: lab.taskQueue,
          workflowId: id,
          workflowIdConflictPolicy: 'TERMINATE_EXISTING',
          args: [{ sessionId: `authz-${run}`, creatorDid: 'did:mesh:admin', config: {} }],
        }),
      /terminate/,
    );
    await refused('saga start', () =>
      agent.workflow.start(SAGA_WORKFLOW, { taskQueue: lab.taskQueue, workflowId: `hv-authz-saga-${run}`, args: [] }),
    );
    await refused('schedule', () =>
      agent.schedule.create({
        scheduleId: `authz-${run}`,
        spec: { intervals: [{ every: '1h' }] },
        action: { type: 'startWorkflow', workflowType: SESSION_WORKFLOW, taskQueue: lab.taskQueue, args: [] },
      }),
    );
    await refused('workflow task poll', () =>
      agent.workflowService.pollWorkflowTaskQueue({
        namespace: 'default',
        taskQueue: { name: lab.taskQueue },
        identity: 'impostor',
      }),
    );
    // Nothing the refusals asked for happened: the session runs, no cron or signal-with-start run exists.
    assert.equal((await lab.client.workflow.getHandle(id).describe()).status.name, 'RUNNING');
    for (const other of [`authz-cron-${run}`, `authz-sws-${run}`]) {
      await assert.rejects(lab.client.workflow.getHandle(sessionWorkflowId(other)).describe(), WorkflowNotFoundError);
    }
  });

  it("allows the worker's terminate, cron start and signal-with-start", async () => {
    const cronId = sessionWorkflowId(`authz-worker-cron-${run}`);
    const cron = await lab.client.workflow.start(SESSION_WORKFLOW, {
      taskQueue: idleQueue,
      workflowId: cronId,
      cronSchedule: '0 0 1 1 *',
      args: [{ sessionId: `authz-worker-cron-${run}`, creatorDid: 'did:mesh:admin', config: {} }],
    });
    const swsId = sessionWorkflowId(`authz-worker-sws-${run}`);
    const sws = await lab.client.workflow.signalWithStart(SESSION_WORKFLOW, {
      taskQueue: idleQueue,
      workflowId: swsId,
      signal: sagaEndedSignal,
      signalArgs: [{ sagaId: 'x' }],
      args: [{ sessionId: `authz-worker-sws-${run}`, creatorDid: 'did:mesh:admin', config: {} }],
    });
    await cron.terminate('authz test: the worker may');
    await sws.terminate('authz test: the worker may');
    // And the agent's session, which the agent could not end.
    await lab.client.workflow.getHandle(sessionWorkflowId(`authz-${run}`)).terminate('authz test: the worker may');
    for (const id of [cronId, swsId, sessionWorkflowId(`authz-${run}`)]) {
      assert.equal((await lab.client.workflow.getHandle(id).describe()).status.name, 'TERMINATED', id);
    }
  });

  it("runs the worker's schedule: Temporal's system worker reaches the frontend with its own certificate", async () => {
    // The scheduler runs in the server's system worker, which calls the frontend (CN=hv-temporal-system).
    const schedule = await lab.client.schedule.create({
      scheduleId: `authz-${run}`,
      spec: { intervals: [{ every: '1h' }] },
      state: { triggerImmediately: true },
      action: {
        type: 'startWorkflow',
        workflowType: SESSION_WORKFLOW,
        taskQueue: idleQueue,
        workflowId: `hv-authz-scheduled-${run}`,
        args: [{ sessionId: `authz-scheduled-${run}`, creatorDid: 'did:mesh:admin', config: {} }],
      },
    });
    try {
      const started = await waitUntil(
        () => schedule.describe().then((d) => d.info.recentActions.length),
        (n) => n > 0,
        'the scheduled start',
        60_000,
      );
      assert.ok(started > 0);
    } finally {
      await schedule.delete();
    }
  });

  it('refuses a client without a certificate, and one whose certificate another CA signed (even CN=hv-worker)', async () => {
    const tls = lab.cluster!.tls;
    /** `refusal`: what the failed handshake says (the server's TLS alert). */
    const attempt = async (what: string, options: Parameters<typeof Connection.lazy>[0], refusal: RegExp) => {
      let connection: Connection | undefined;
      await assert.rejects(
        async () => {
          // Its calls go once, as an attacker's client makes them: without the SDK's retries, a refused
          // handshake fails the first call at once (connect() would wait out its deadline instead).
          connection = Connection.lazy({ address: lab.address, interceptors: [], ...options });
          await connection.workflowService.getSystemInfo({});
          await connection.workflowService.describeNamespace({ namespace: 'default' });
        },
        (err: unknown) => {
          if (process.env.HV_AUTHZ_VERBOSE) console.log(`      ${what}: ${message(err)}`);
          // Never a policy refusal: the handshake itself fails, so no call reaches the server.
          assert.notEqual(grpcCode(err), grpcStatus.PERMISSION_DENIED, `${what}: ${message(err)}`);
          assert.equal(grpcCode(err), grpcStatus.UNAVAILABLE, `${what}: ${message(err)}`);
          assert.match(message(err), refusal, what);
          return true;
        },
        `${what} connected`,
      );
      await connection?.close().catch(() => undefined);
    };
    await attempt('plain TCP', { tls: undefined }, /No connection established/);
    await attempt(
      'TLS without a client certificate',
      {
        tls: {
          serverRootCACertificate: fs.readFileSync(tls.ca),
          serverNameOverride: tls.client(CLUSTER_CERTS.worker).serverName,
        },
      },
      /alert certificate required/,
    );
    // A look-alike worker certificate from a CA of its own.
    const other = path.join(lab.dir, 'other-ca');
    const made = spawnSync(lab.cluster!.serverBinary, ['certs', '--dir', other, '--hosts', 'localhost'], {
      encoding: 'utf8',
    });
    assert.equal(made.status, 0, made.stderr);
    await attempt(
      'a worker certificate from another CA',
      {
        tls: {
          serverRootCACertificate: fs.readFileSync(tls.ca),
          serverNameOverride: tls.client(CLUSTER_CERTS.worker).serverName,
          clientCertPair: {
            crt: fs.readFileSync(path.join(other, 'hv-worker.pem')),
            key: fs.readFileSync(path.join(other, 'hv-worker.key')),
          },
        },
      },
      /alert unknown ca/,
    );
  });
});
