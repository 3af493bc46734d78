/**
 * What the durability tests share: a dev server of the test's own on a temp
 * database file (restartable on the same port and file), hypervisor workers
 * as child processes (to SIGKILL), and an HTTP tool that honours
 * Idempotency-Key and counts its side effects per key.
 *
 * Each test file builds its own Lab and disposes of it in an after hook, which
 * kills every process it started even when a test failed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { HypervisorClient } from '../../src/client';
import { startDevServer, type DevServer } from '../../worker/devServer';
import { workflowBundle } from '../../worker/worker';
import { freePort } from '../helpers/ports';

export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');
const EventType = temporal.api.enums.v1.EventType;
const WorkflowTaskFailedCause = temporal.api.enums.v1.WorkflowTaskFailedCause;

/** Polls until ok(probe()) with a deadline; a probe that throws (server away) counts as not yet. */
export async function waitUntil<T>(probe: () => Promise<T>, ok: (value: T) => boolean, what: string, timeoutMs = 120_000): Promise<T> {
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
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}; last: ${JSON.stringify(last)?.slice(0, 500)}`);
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
      const code = (err as { code?: number; cause?: { code?: number } })?.cause?.code ?? (err as { code?: number })?.code;
      const msg = err instanceof Error ? `${err.message} ${(err.cause as Error | undefined)?.message ?? ''}` : String(err);
      const transient = code === 14 || code === 4 || /UNAVAILABLE|DEADLINE_EXCEEDED|ECONNREFUSED|ECONNRESET|failed to connect|transport error/i.test(msg);
      if (transient) transientErrors.push(msg.slice(0, 160));
      if (!transient || Date.now() > deadline) throw Object.assign(err as Error, { message: `${what}: ${(err as Error).message}` });
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

// ── The HTTP tool ────────────────────────────────────────────────────────────

interface Stored { status: number; body: string }

/**
 * An HTTP tool that honours Idempotency-Key: the first request with a key
 * acts (counted in `acted`), waits `delay` ms (the window for a crash), then
 * stores its answer; a repeated key gets the stored answer — or, while the
 * first is still running, waits for it — without acting again.
 * Query parameters: `delay` (ms), `fail=1` answers 400 (a permanent failure).
 */
export class IdempotentTool {
  readonly requests = new Map<string, number>();
  readonly acted = new Map<string, number>();
  /** Keys in the order they acted. */
  readonly actOrder: string[] = [];
  private readonly stored = new Map<string, Stored>();
  private readonly running = new Map<string, Promise<Stored>>();
  private server?: http.Server;
  base = '';

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
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

  url(phase: 'execute' | 'undo', opts: { delay?: number; fail?: boolean } = {}): string {
    const q = [`delay=${opts.delay ?? 0}`, ...(opts.fail ? ['fail=1'] : [])];
    return `${this.base}/${phase}?${q.join('&')}`;
  }

  private async handle(req: http.IncomingMessage, body: string): Promise<Stored> {
    const key = String(req.headers['idempotency-key'] ?? '');
    if (!key) return { status: 400, body: JSON.stringify({ error: 'no Idempotency-Key' }) };
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    const done = this.stored.get(key);
    if (done) return done;
    const inFlight = this.running.get(key);
    if (inFlight) return inFlight;
    const url = new URL(req.url ?? '/', 'http://x');
    const delay = Number(url.searchParams.get('delay') ?? 0);
    const fail = url.searchParams.get('fail') === '1';
    const work = (async (): Promise<Stored> => {
      // The side effect happens here, once per key.
      this.acted.set(key, (this.acted.get(key) ?? 0) + 1);
      this.actOrder.push(key);
      if (delay > 0) await new Promise((r) => setTimeout(r, delay));
      const answer = fail
        ? { status: 400, body: JSON.stringify({ error: `refused ${key}` }) }
        : { status: 200, body: JSON.stringify({ key, path: url.pathname, input: safeJson(body) }) };
      this.stored.set(key, answer);
      this.running.delete(key);
      return answer;
    })();
    this.running.set(key, work);
    return work;
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

  /** Keys requested more than once (a retry after a crash or a timeout), each of which acted once. */
  retriedKeys(): string[] {
    return [...this.requests.entries()].filter(([, n]) => n > 1).map(([k]) => k);
  }

  totalRequests(): number {
    let n = 0;
    for (const v of this.requests.values()) n += v;
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

  constructor(env: Record<string, string>, logFile: string) {
    const out = fs.openSync(logFile, 'a');
    this.child = spawn(process.execPath, ['--require', require.resolve('tsx/cjs'), path.join(__dirname, 'workerProcess.ts')], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', out],
    });
    fs.closeSync(out);
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => {
      this.exitInfo = { code, signal };
      resolve({ code, signal });
    }));
    this.ready = new Promise<void>((resolve, reject) => {
      let text = '';
      this.child.stdout!.on('data', (chunk: Buffer) => {
        text += chunk.toString('utf8');
        if (text.includes('READY')) resolve();
      });
      void this.exited.then(({ code, signal }) => reject(new Error(`worker process exited before it was ready (code ${code}, signal ${signal}); see ${logFile}`)));
    });
    this.ready.catch(() => undefined);
  }

  get pid(): number {
    return this.child.pid!;
  }

  whenReady(timeoutMs = 120_000): Promise<void> {
    return Promise.race([
      this.ready,
      new Promise<void>((_, reject) => setTimeout(() => reject(new Error('worker process not ready in time')), timeoutMs).unref()),
    ]);
  }

  /** The crash: SIGKILL, no chance to finish or report anything. */
  async kill(): Promise<void> {
    if (this.exitInfo) return;
    this.child.kill('SIGKILL');
    await this.exited;
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

export class Lab {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hv-durability-'));
  readonly dbFile = path.join(this.dir, 'temporal.db');
  readonly taskQueue = `hv-durability-${process.pid}-${Date.now().toString(36)}`;
  readonly tool = new IdempotentTool();
  readonly workers: WorkerProcess[] = [];
  server?: DevServer;
  port = 0;
  uiPort = 0;
  connection?: Connection;
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
  static forSuite(): Lab {
    const lab = new Lab();
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

  /** Server on a temp db file, a prebuilt workflow bundle, the HTTP tool and one worker process. */
  async start(): Promise<void> {
    this.port = await freePort();
    this.uiPort = await freePort();
    await this.startServer();
    const bundle = await workflowBundle();
    this.bundlePath = path.join(this.dir, 'workflow-bundle.js');
    fs.writeFileSync(this.bundlePath, bundle.code);
    await this.tool.start();
    this.connection = await Connection.connect({ address: this.address });
    this.hv = new HypervisorClient(new Client({ connection: this.connection }), this.taskQueue);
    await this.startWorker();
  }

  async startServer(): Promise<void> {
    this.server = await startDevServer(
      { port: this.port, uiPort: this.uiPort, dbFile: this.dbFile, headless: true, logFile: path.join(this.dir, 'server.log') },
      () => undefined,
    );
  }

  /**
   * Stops the dev server (SIGTERM) and starts it again on the same port and
   * database file. `outageMs` keeps it down that long first: the scenario's
   * outage (longer than a step's start-to-close timeout), not a wait for a condition.
   */
  async restartServer(outageMs = 0): Promise<{ downMs: number }> {
    const t0 = Date.now();
    await this.server?.stop();
    this.server = undefined;
    if (outageMs > 0) await new Promise((r) => setTimeout(r, outageMs));
    await this.startServer();
    return { downMs: Date.now() - t0 };
  }

  /** A new worker process; resolves once it polls. */
  async startWorker(): Promise<WorkerProcess> {
    this.workerCount++;
    const w = new WorkerProcess(
      { TEMPORAL_ADDRESS: this.address, HV_TASK_QUEUE: this.taskQueue, HV_BUNDLE_PATH: this.bundlePath },
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
   */
  async workflowTaskFailures(workflowIds: string[]): Promise<string[]> {
    const failures: string[] = [];
    for (const id of workflowIds) {
      const history = await this.client.workflow.getHandle(id).fetchHistory();
      for (const e of history.events ?? []) {
        if (e.eventType !== EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED) continue;
        const attrs = e.workflowTaskFailedEventAttributes;
        if (attrs?.cause === WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND) {
          this.unhandledCommandTasks++;
          continue;
        }
        failures.push(`${id}: cause ${WorkflowTaskFailedCause[attrs?.cause ?? 0]}: ${attrs?.failure?.message ?? 'workflow task failed'}`);
      }
    }
    return failures;
  }

  /** How many UNHANDLED_COMMAND workflow task failures workflowTaskFailures() saw (benign; see there). */
  unhandledCommandTasks = 0;

  /** Kills and removes everything; safe to call after a partial start. */
  async dispose(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.kill().catch(() => undefined)));
    await this.connection?.close().catch(() => undefined);
    await this.tool.stop().catch(() => undefined);
    await this.server?.stop().catch(() => undefined);
    if (process.env.HV_KEEP_DURABILITY_DIR) console.log(`    (kept ${this.dir})`);
    else fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** An active session whose agents can run reversible (ring 2) actions. */
export const AGENTS = { alpha: 'did:mesh:alpha', beta: 'did:mesh:beta' };
export const ACTIONS = [
  { actionId: 'draft', reversibility: 'FULL' as const },
  { actionId: 'reserve', reversibility: 'PARTIAL' as const },
  { actionId: 'publish', reversibility: 'FULL' as const },
  { actionId: 'notify', reversibility: 'FULL' as const },
];

export async function activeSession(hv: HypervisorClient, sessionId: string) {
  const session = await hv.createSession({ sessionId, creatorDid: 'did:mesh:admin' });
  await session.join({ agentDid: AGENTS.alpha, sigmaRaw: 0.85, actions: ACTIONS });
  await session.join({ agentDid: AGENTS.beta, sigmaRaw: 0.8, actions: ACTIONS });
  await session.activate();
  return session;
}
