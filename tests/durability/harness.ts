/**
 * What the durability tests share: a dev server of the test's own on a temp
 * database file (restartable on the same port and file), hypervisor workers
 * as child processes (to SIGKILL), and an HTTP tool that honours
 * Idempotency-Key and counts its side effects per key.
 *
 * Each test file builds its own Lab and disposes of it in an after hook, which
 * kills every process it started even when a test failed.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { HypervisorClient } from '../../src/client';
import { SRE_SIGNER } from '../helpers/sre';
import { openAuditStore, type AuditStore } from '../../src/store';
import type { SagaSnapshot } from '../../src/contract/sagaTypes';
import { startDevServer, type DevServer } from '../../worker/devServer';
import { CLUSTER_CERTS, startCluster, type Cluster } from '../../worker/cluster';
import { tlsEnv } from '../../src/node/connectionTls';
import { workflowBundle } from '../../worker/worker';
import { freePort } from '../../worker/ports';

export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');
const EventType = temporal.api.enums.v1.EventType;
const WorkflowTaskFailedCause = temporal.api.enums.v1.WorkflowTaskFailedCause;

/** Polls until ok(probe()) with a deadline; a probe that throws (server away) counts as not yet. */
export async function waitUntil<T>(
  probe: () => Promise<T>,
  ok: (value: T) => boolean,
  what: string,
  timeoutMs = 120_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (ok(value)) return value;
      last = value;
    } catch (err) {
      last = err instanceof Error ? `error: ${err.message}` : err;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs / 1000} s waiting for ${what}; last: ${JSON.stringify(last)?.slice(0, 500)}`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Retries a call while the server is away (restarting); gives up at the deadline. */
/** The transient errors retrying() met (what a client sees while the server is away). */
export const transientErrors: string[] = [];
export async function retrying<T>(call: () => Promise<T>, what: string, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await call();
    } catch (err) {
      const code =
        (err as { code?: number; cause?: { code?: number } })?.cause?.code ?? (err as { code?: number })?.code;
      const msg =
        err instanceof Error ? `${err.message} ${(err.cause as Error | undefined)?.message ?? ''}` : String(err);
      const transient =
        code === 14 ||
        code === 4 ||
        /UNAVAILABLE|DEADLINE_EXCEEDED|ECONNREFUSED|ECONNRESET|failed to connect|transport error/i.test(msg);
      if (transient) transientErrors.push(msg.slice(0, 160));
      if (!transient || Date.now() > deadline)
        throw Object.assign(err as Error, { message: `${what}: ${(err as Error).message}` });
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

// ── The HTTP tool ────────────────────────────────────────────────────────────

interface Stored {
  status: number;
  body: string;
}

/** One request the tool saw (or saw aborted): its Idempotency-Key, the agent it was made for, when. */
export interface ToolRequestRecord {
  key: string;
  agentDid: string;
  at: number;
}

/**
 * What a step asks of the tool, in its `input` (the tool gets `{input}` on
 * execute and `{input, result}` on undo): how long execute and undo take (the
 * window for a crash) and whether execute is refused with a 400 (a permanent
 * failure, after acting).
 */
export interface ToolInput {
  delayMs?: number;
  undoDelayMs?: number;
  fail?: boolean;
  /** The execute request reaches the tool only this late (held in the network): an attempt that times out before the tool saw it. */
  arriveAfterMs?: number;
}

const EXECUTE = '/execute';
const UNDO = '/undo';
const executeKeyOf = (undoKey: string) => `${undoKey.slice(0, -UNDO.length)}${EXECUTE}`;

/**
 * An HTTP tool that honours Idempotency-Key (`<saga workflow id>/<stepId>/execute|undo`):
 * the first request with a key acts (counted in `acted`), waits its delay,
 * then stores its answer; a repeated key gets the stored answer — or, while
 * the first is still running, waits for it — without acting again.
 *
 * An undo of a step it never executed is a no-op (a saga compensates a step
 * whose outcome it does not know — timed out, worker lost — with the step's
 * undo key): it answers 200 `{noop: true}`, counts it in `noopUndos`, not in
 * `acted`, and refuses (409) that step's execute if it arrives later. An undo
 * that arrives while its execute is still running waits for the execute first.
 */
export class IdempotentTool {
  readonly requests = new Map<string, number>();
  readonly acted = new Map<string, number>();
  /** Keys in the order they acted. */
  readonly actOrder: string[] = [];
  /** Undo keys whose execute never acted here: answered without acting. */
  readonly noopUndos: string[] = [];
  /** Execute keys undone before they ever acted: refused (409) if they come. */
  readonly tombstones = new Set<string>();
  /** When each key's action began and ended (ms since epoch). */
  readonly startedAt = new Map<string, number>();
  readonly finishedAt = new Map<string, number>();
  /** Every request as it arrived: its key, the acting agent (`x-hv-agent-did`) and when (ms since epoch). */
  readonly arrivals: ToolRequestRecord[] = [];
  /**
   * Requests whose connection closed before the tool answered: the caller
   * aborted (a cancelled step's fetch) or its process died. The tool's work
   * for the key goes on (it may have acted); a later request with the key
   * gets its answer.
   */
  readonly aborts: ToolRequestRecord[] = [];
  private readonly stored = new Map<string, Stored>();
  private readonly running = new Map<string, Promise<Stored>>();
  private server?: http.Server;
  base = '';

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      const seen: ToolRequestRecord = {
        key: String(req.headers['idempotency-key'] ?? ''),
        agentDid: String(req.headers['x-hv-agent-did'] ?? ''),
        at: Date.now(),
      };
      this.arrivals.push(seen);
      // 'close' before the answer was written: the caller went away without it.
      res.once('close', () => {
        if (!res.writableEnded) this.aborts.push({ ...seen, at: Date.now() });
      });
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        void this.handle(req, Buffer.concat(chunks).toString('utf8')).then((answer) => {
          if (!res.destroyed) res.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.body);
        });
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** The endpoint an action declares at join (the session must list `base` in allowedToolOrigins). */
  endpoint(phase: 'execute' | 'undo'): string {
    return `${this.base}/${phase}`;
  }

  private async handle(req: http.IncomingMessage, body: string): Promise<Stored> {
    const key = String(req.headers['idempotency-key'] ?? '');
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path !== EXECUTE && path !== UNDO) return { status: 404, body: JSON.stringify({ error: `no ${path}` }) };
    if (!key.endsWith(path))
      return { status: 400, body: JSON.stringify({ error: `Idempotency-Key "${key}" is not a ${path.slice(1)} key` }) };
    const sent = safeJson(body) as { input?: ToolInput | null } | null;
    const input: ToolInput =
      sent && typeof sent === 'object' && sent.input && typeof sent.input === 'object' ? sent.input : {};
    if (path === EXECUTE && input.arriveAfterMs) await new Promise((r) => setTimeout(r, input.arriveAfterMs));
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    const done = this.stored.get(key);
    if (done) return done;
    const inFlight = this.running.get(key);
    if (inFlight) return inFlight;
    // Started on the next tick, so that it is in `running` before it can finish.
    const work = Promise.resolve().then(async (): Promise<Stored> => {
      let answer: Stored;
      if (path === UNDO) {
        const executeKey = executeKeyOf(key);
        await this.running.get(executeKey);
        if (!this.acted.has(executeKey)) {
          // Never done here: nothing to undo, and the execute may no longer act.
          this.tombstones.add(executeKey);
          this.noopUndos.push(key);
          answer = { status: 200, body: JSON.stringify({ key, noop: true }) };
        } else answer = await this.act(key, input.undoDelayMs ?? 0, false, sent);
      } else if (this.tombstones.has(key)) {
        answer = { status: 409, body: JSON.stringify({ error: `${key} was undone before it ran` }) };
      } else answer = await this.act(key, input.delayMs ?? 0, input.fail === true, sent);
      this.stored.set(key, answer);
      this.running.delete(key);
      return answer;
    });
    this.running.set(key, work);
    return work;
  }

  /** The side effect, once per key. */
  private async act(key: string, delayMs: number, fail: boolean, sent: unknown): Promise<Stored> {
    this.acted.set(key, (this.acted.get(key) ?? 0) + 1);
    this.actOrder.push(key);
    this.startedAt.set(key, Date.now());
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
    this.finishedAt.set(key, Date.now());
    return fail
      ? { status: 400, body: JSON.stringify({ error: `refused ${key}` }) }
      : { status: 200, body: JSON.stringify({ key, sent }) };
  }

  /**
   * Asserts that exactly the expected keys acted. On a mismatch the message
   * names each missing or extra key with what its saga says of the step
   * (state, attempts, error) and how often the tool was asked for it.
   */
  assertActed(
    expected: Iterable<string>,
    snapshots: readonly SagaSnapshot[],
    filter: (key: string) => boolean = () => true,
  ): void {
    const want = new Set(expected);
    const got = new Set([...this.acted.keys()].filter(filter));
    const missing = [...want].filter((k) => !got.has(k));
    const extra = [...got].filter((k) => !want.has(k));
    if (missing.length === 0 && extra.length === 0) return;
    const byId = new Map(snapshots.map((s) => [s.workflowId, s]));
    const explain = (key: string) => {
      // `<workflowId>/<stepId>/<phase>`: the workflow id holds a "/" too (N16), the ids after it none.
      const parts = key.split('/');
      const [workflowId, stepId] = [parts.slice(0, -2).join('/'), parts.at(-2)];
      const snap = byId.get(workflowId!);
      const step = snap?.saga.steps.find((s) => s.stepId === stepId);
      return `${key} (asked ${this.requests.get(key) ?? 0}×; saga ${snap?.saga.state ?? '?'}, step ${step ? `${step.state}, ${step.attempts} attempts, error ${JSON.stringify(step.error)}` : '?'}; saga error ${JSON.stringify(snap?.error)})`;
    };
    throw new assert.AssertionError({
      message: `side effects differ from the expected ones:${missing.map((k) => `\n  missing ${explain(k)}`).join('')}${extra.map((k) => `\n  extra ${explain(k)}`).join('')}`,
    });
  }

  /** Requests being worked on right now (acting, not answered yet). */
  inFlight(filter: (key: string) => boolean = () => true): number {
    return [...this.running.keys()].filter(filter).length;
  }

  /** The keys being worked on right now. */
  runningKeys(): string[] {
    return [...this.running.keys()];
  }

  actedCount(filter: (key: string) => boolean = () => true): number {
    return [...this.acted.keys()].filter(filter).length;
  }

  /** Keys that acted more than once — must stay empty. */
  doubleActs(): [string, number][] {
    return [...this.acted.entries()].filter(([, n]) => n !== 1);
  }

  /** Undos that acted for an execute that never acted — must stay empty (the tool's own invariant). */
  undosWithoutExecute(): string[] {
    return [...this.acted.keys()].filter((k) => k.endsWith(UNDO) && !this.acted.has(executeKeyOf(k)));
  }

  /** Keys requested more than once (a retry after a crash or a timeout), each of which acted once. */
  retriedKeys(): string[] {
    return [...this.requests.entries()].filter(([, n]) => n > 1).map(([k]) => k);
  }

  totalRequests(filter: (key: string) => boolean = () => true): number {
    let n = 0;
    for (const [k, v] of this.requests) if (filter(k)) n += v;
    return n;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server!.close(() => r()));
    this.server = undefined;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

// ── Worker processes ────────────────────────────────────────────────────────

export class WorkerProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private ready: Promise<void>;
  exitInfo?: { code: number | null; signal: NodeJS.Signals | null };

  constructor(
    env: Record<string, string>,
    readonly logFile: string,
  ) {
    const out = fs.openSync(logFile, 'a');
    this.child = spawn(
      process.execPath,
      ['--require', require.resolve('tsx/cjs'), path.join(__dirname, 'workerProcess.ts')],
      {
        cwd: PROJECT_ROOT,
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', out],
      },
    );
    fs.closeSync(out);
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        resolve({ code, signal });
      }),
    );
    this.ready = new Promise<void>((resolve, reject) => {
      let text = '';
      this.child.stdout!.on('data', (chunk: Buffer) => {
        text += chunk.toString('utf8');
        if (text.includes('READY')) resolve();
      });
      void this.exited.then(({ code, signal }) =>
        reject(new Error(`worker process exited before it was ready (code ${code}, signal ${signal}); see ${logFile}`)),
      );
    });
    this.ready.catch(() => undefined);
  }

  get pid(): number {
    return this.child.pid!;
  }

  whenReady(timeoutMs = 120_000): Promise<void> {
    return Promise.race([
      this.ready,
      new Promise<void>((_, reject) =>
        setTimeout(() => reject(new Error('worker process not ready in time')), timeoutMs).unref(),
      ),
    ]);
  }

  /** The crash: SIGKILL, no chance to finish or report anything. */
  async kill(): Promise<void> {
    if (this.exitInfo) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }

  /** SIGSTOP: the process is frozen as it is — its polls, connections and cached runs held, nothing answered. */
  pause(): void {
    this.child.kill('SIGSTOP');
  }

  /** SIGCONT: it carries on from where it was frozen. */
  resume(): void {
    this.child.kill('SIGCONT');
  }

  /** Graceful stop; SIGKILL after 15 s. */
  async stop(): Promise<void> {
    if (this.exitInfo) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
    await this.exited;
    clearTimeout(timer);
  }
}

// ── The lab: server + workers + tool, all disposed of together ─────────────

/**
 * Which Temporal the lab runs on: the dev server (one process, SQLite), or
 * the real cluster (worker/cluster.ts: the Temporal server on PostgreSQL,
 * several history shards; the audit store on the same PostgreSQL).
 */
export type LabBackend = 'dev' | 'cluster';

export class Lab {
  /** `workers`: how many worker processes start with the lab. */
  constructor(
    readonly backend: LabBackend = 'dev',
    readonly initialWorkers = 1,
  ) {
    // The cluster's PostgreSQL runs as the postgres user (as root, see worker/postgres.ts): it must reach its folder.
    fs.chmodSync(this.dir, 0o711);
  }

  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hv-durability-'));
  readonly dbFile = path.join(this.dir, 'temporal.db');
  readonly taskQueue = `hv-durability-${process.pid}-${Date.now().toString(36)}`;
  readonly tool = new IdempotentTool();
  readonly workers: WorkerProcess[] = [];
  server?: DevServer;
  cluster?: Cluster;
  port = 0;
  uiPort = 0;
  connection?: Connection;
  store?: AuditStore;
  hv!: HypervisorClient;
  private bundlePath = '';
  private workerCount = 0;

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get client(): Client {
    return this.hv.client;
  }

  /** A lab for the enclosing describe: started before its tests, disposed after them, pass or fail. */
  static forSuite(backend: LabBackend = 'dev', workers = 1): Lab {
    const lab = new Lab(backend, workers);
    before(async function () {
      this.timeout(240_000);
      await lab.start();
    });
    after(async function () {
      this.timeout(60_000);
      await lab.dispose();
    });
    return lab;
  }

  /** The server (dev or cluster), a prebuilt workflow bundle, the HTTP tool and the first worker processes. */
  async start(): Promise<void> {
    this.port = await freePort();
    this.uiPort = await freePort();
    await this.startServer();
    const bundle = await workflowBundle();
    this.bundlePath = path.join(this.dir, 'workflow-bundle.js');
    fs.writeFileSync(this.bundlePath, bundle.code);
    await this.tool.start();
    // The cluster's frontend speaks mutual TLS: the lab's client is the worker (CN=hv-worker).
    this.connection = await Connection.connect({ address: this.address, tls: this.cluster?.workerTls });
    this.store = await openAuditStore(this.cluster ? { url: this.cluster.auditUrl } : { dataDir: this.dir });
    this.hv = new HypervisorClient(new Client({ connection: this.connection }), this.taskQueue, this.store);
    await Promise.all(Array.from({ length: this.initialWorkers }, () => this.startWorker()));
  }

  async startServer(): Promise<void> {
    if (this.backend === 'cluster') {
      this.cluster = await startCluster({
        root: path.join(this.dir, 'cluster'),
        port: this.port,
        log: () => undefined,
      });
      return;
    }
    this.server = await startDevServer(
      {
        port: this.port,
        uiPort: this.uiPort,
        dbFile: this.dbFile,
        headless: true,
        logFile: path.join(this.dir, 'server.log'),
      },
      () => undefined,
    );
  }

  /**
   * Stops the dev server (SIGTERM, or SIGKILL with `kill`) and starts it again on the same port and
   * database file. `outageMs` keeps it down that long first: the scenario's
   * outage (longer than a step's start-to-close timeout), not a wait for a condition.
   */
  async restartServer(outageMs = 0, opts: { kill?: boolean } = {}): Promise<{ downMs: number }> {
    const t0 = Date.now();
    if (this.cluster) {
      await this.cluster.restartServer(outageMs);
      return { downMs: Date.now() - t0 };
    }
    // `kill`: SIGKILL, as a crash: nothing is flushed or drained (stop() then finds it exited).
    if (opts.kill) this.server?.process.kill('SIGKILL');
    await this.server?.stop();
    this.server = undefined;
    if (outageMs > 0) await new Promise((r) => setTimeout(r, outageMs));
    await this.startServer();
    return { downMs: Date.now() - t0 };
  }

  /** A new worker process; resolves once it polls. `env`: more of its settings (e.g. HV_STICKY_QUEUE_TIMEOUT_MS). */
  async startWorker(env: Record<string, string> = {}): Promise<WorkerProcess> {
    this.workerCount++;
    const w = new WorkerProcess(
      {
        TEMPORAL_ADDRESS: this.address,
        HV_TASK_QUEUE: this.taskQueue,
        HV_BUNDLE_PATH: this.bundlePath,
        // The worker runs the harness's tool, which listens on 127.0.0.1: listed, and private addresses allowed.
        HV_TOOL_ORIGINS: this.tool.base,
        HV_TOOL_ALLOW_PRIVATE: '1',
        ...(this.cluster
          ? { HV_AUDIT_DATABASE_URL: this.cluster.auditUrl, ...tlsEnv(this.cluster.tls.client(CLUSTER_CERTS.worker)) }
          : { HV_DATA_DIR: this.dir }),
        ...env,
      },
      path.join(this.dir, `worker-${this.workerCount}.log`),
    );
    this.workers.push(w);
    await w.whenReady();
    return w;
  }

  /** The worker processes still alive. */
  live(): WorkerProcess[] {
    return this.workers.filter((w) => !w.exitInfo);
  }

  /** SIGKILL one live worker (the oldest); the others go on. */
  async killOneWorker(): Promise<WorkerProcess> {
    const victim = this.live()[0];
    if (!victim) throw new Error('no live worker to kill');
    await victim.kill();
    return victim;
  }

  /** SIGKILL every live worker; returns how many were killed. */
  async killWorkers(): Promise<number> {
    const live = this.live();
    await Promise.all(live.map((w) => w.kill()));
    return live.length;
  }

  /**
   * WorkflowTaskFailed events that mean a failing workflow task (a code error,
   * a non-determinism, a bad command) in the histories of these workflow ids.
   * Not counted, only tallied in `unhandledCommandTasks`: the server's
   * UNHANDLED_COMMAND, which it records when a signal arrived while the task
   * that would complete the workflow was in flight — the SDK runs the next task
   * at once with the signal; nothing failed in the workflow's code.
   * `{ strict: true }` counts those too: no WorkflowTaskFailed event at all.
   */
  async workflowTaskFailures(workflowIds: string[], opts: { strict?: boolean } = {}): Promise<string[]> {
    const failures: string[] = [];
    for (const id of workflowIds) {
      const history = await this.client.workflow.getHandle(id).fetchHistory();
      for (const e of history.events ?? []) {
        if (e.eventType !== EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED) continue;
        const attrs = e.workflowTaskFailedEventAttributes;
        if (!opts.strict && attrs?.cause === WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND) {
          this.unhandledCommandTasks++;
          continue;
        }
        failures.push(
          `${id}: cause ${WorkflowTaskFailedCause[attrs?.cause ?? 0]}: ${attrs?.failure?.message ?? 'workflow task failed'}`,
        );
      }
    }
    return failures;
  }

  /** A saga's activities as its history tells them (for a failure message): attempt, outcome, retry state. */
  async activityStory(workflowId: string): Promise<string> {
    const history = await this.client.workflow.getHandle(workflowId).fetchHistory();
    const names = new Map<string, string>();
    const lines: string[] = [];
    const RetryState = temporal.api.enums.v1.RetryState;
    for (const e of history.events ?? []) {
      const id = String(e.eventId);
      const sched = e.activityTaskScheduledEventAttributes;
      if (sched) names.set(id, `${sched.activityType?.name} ${sched.activityId}`);
      const started = e.activityTaskStartedEventAttributes;
      if (started)
        lines.push(
          `${names.get(String(started.scheduledEventId))}: started attempt ${started.attempt}${started.lastFailure ? ` (last failure: ${started.lastFailure.message})` : ''}`,
        );
      const done = e.activityTaskCompletedEventAttributes;
      if (done) lines.push(`${names.get(String(done.scheduledEventId))}: completed`);
      const failed = e.activityTaskFailedEventAttributes;
      if (failed)
        lines.push(
          `${names.get(String(failed.scheduledEventId))}: failed, ${RetryState[failed.retryState ?? 0]}: ${failed.failure?.message}`,
        );
      const timedOut = e.activityTaskTimedOutEventAttributes;
      if (timedOut)
        lines.push(
          `${names.get(String(timedOut.scheduledEventId))}: timed out, ${RetryState[timedOut.retryState ?? 0]}: ${timedOut.failure?.message} / ${timedOut.failure?.cause?.message ?? ''}`,
        );
      const cancelled = e.activityTaskCanceledEventAttributes;
      if (cancelled) lines.push(`${names.get(String(cancelled.scheduledEventId))}: cancelled`);
    }
    return `${workflowId}:\n    ${lines.join('\n    ')}`;
  }

  /** How many UNHANDLED_COMMAND workflow task failures workflowTaskFailures() saw (benign; see there). */
  unhandledCommandTasks = 0;

  /** Kills and removes everything; safe to call after a partial start. */
  async dispose(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.kill().catch(() => undefined)));
    await this.store?.close().catch(() => undefined);
    await this.connection?.close().catch(() => undefined);
    await this.tool.stop().catch(() => undefined);
    await this.server?.stop().catch(() => undefined);
    await this.cluster?.stop().catch(() => undefined);
    if (process.env.HV_KEEP_DURABILITY_DIR) console.log(`    (kept ${this.dir})`);
    else fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A saga as a test holds it: under the workflow id its session gave it (startSaga's answer). */
export interface HeldSaga {
  handle: { workflowId: string };
}

/** A step's idempotency key: `<its saga's workflow id>/<stepId>/<execute|undo>` (activities/steps.ts). */
export const stepKey = (saga: HeldSaga, stepId: string, phase: 'execute' | 'undo') =>
  `${saga.handle.workflowId}/${stepId}/${phase}`;

/** Keys of these sagas' steps only (a step id holds no "/", so one saga's prefix is no other's). */
export const ofSagas =
  (sagas: readonly HeldSaga[]) =>
  (key: string): boolean =>
    sagas.some((s) => key.startsWith(`${s.handle.workflowId}/`));

/** Two agents that can run reversible (ring 2) actions. */
export const AGENTS = { alpha: 'did:mesh:alpha', beta: 'did:mesh:beta' };
const ACTION_LEVELS = { draft: 'FULL', reserve: 'PARTIAL', publish: 'FULL', notify: 'FULL' } as const;
export type ToolActionId = keyof typeof ACTION_LEVELS;

/** The actions each agent declares at join: all run by the lab's HTTP tool (SPEC §11.4). */
export function toolActions(tool: IdempotentTool) {
  return Object.entries(ACTION_LEVELS).map(([actionId, reversibility]) => ({
    actionId,
    reversibility,
    executeApi: tool.endpoint('execute'),
    undoApi: tool.endpoint('undo'),
  }));
}

/** Temporal's timeout and retry for a step of the lab (3 s per attempt: a lost attempt is noticed after 3 s). */
export interface StepTiming {
  timeoutSeconds: number;
  retry: {
    maximumAttempts: number;
    initialIntervalSeconds?: number;
    backoffCoefficient?: number;
    maximumIntervalSeconds?: number;
  };
}

/** One saga step run by the HTTP tool; what the tool does (delays, refusal) travels in the step's input. */
export function toolStep(actionId: ToolActionId, agentDid: string, tool: ToolInput, timing: StepTiming) {
  return { actionId, agentDid, input: { ...tool }, ...timing };
}

/** An SRE a session may name in `sreWitnesses` (it kills, quarantines, witnesses: SPEC §12); a did:key, as it signs (§11.9). */
export { SRE } from '../helpers/sre';

/** The session as its SRE reaches it: each SRE request signed by the SRE it names (SPEC §11.9). */
export function asSre(lab: Pick<Lab, 'hv'>, session: { sessionId: string }) {
  return new HypervisorClient(lab.hv.client, lab.hv.taskQueue, undefined, SRE_SIGNER).session(session.sessionId);
}

/**
 * An active session whose agents declared the tool's actions; the tool's origin is allowed.
 * `agents` (DID → σ) replaces alpha and beta; `config` is merged into the session's config.
 */
export async function activeSession(
  lab: Pick<Lab, 'hv' | 'tool'>,
  sessionId: string,
  opts: { agents?: Record<string, number>; config?: Record<string, unknown> } = {},
) {
  const session = await lab.hv.createSession({
    sessionId,
    creatorDid: 'did:mesh:admin',
    config: { allowedToolOrigins: [lab.tool.base], ...opts.config },
  });
  const actions = toolActions(lab.tool);
  for (const [agentDid, sigmaRaw] of Object.entries(opts.agents ?? { [AGENTS.alpha]: 0.85, [AGENTS.beta]: 0.8 })) {
    await session.join({ agentDid, sigmaRaw, actions });
  }
  await session.activate();
  return session;
}
