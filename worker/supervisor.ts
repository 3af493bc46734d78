/**
 * Keeps a process running, as compose's `restart: unless-stopped` keeps a
 * container: `npm run cluster` (scripts/cluster.ts) supervises its workers
 * with it. A child that exits while the supervisor is not stopping — any exit
 * code, or a signal — is started again after a backoff that doubles from
 * `initialBackoffMs` up to `maxBackoffMs`, and falls back to the initial one
 * after a run that lasted `stableAfterMs`. Every restart is logged. `stop()`
 * cancels a pending restart, stops the child (SIGTERM, then SIGKILL after the
 * grace period) and starts nothing more.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';

export interface SupervisorOptions {
  /** For the log lines: "worker 1". */
  name: string;
  file: string;
  args: string[];
  cwd?: string;
  /** The child's whole environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** Where the child's stdout and stderr are appended (default: discarded). */
  logFile?: string;
  /** A process group of its own, so a Ctrl-C reaches only the supervisor, which stops the child in order (default true). */
  detached?: boolean;
  /** The first restart's delay, ms (default 1 s). */
  initialBackoffMs?: number;
  /** The longest delay, ms (default 30 s). */
  maxBackoffMs?: number;
  /** A run at least this long resets the delay to the initial one, ms (default 60 s). */
  stableAfterMs?: number;
  log?: (line: string) => void;
}

export interface Exit {
  pid: number | undefined;
  code: number | null;
  signal: NodeJS.Signals | null;
  ranMs: number;
}

export class Supervisor {
  private child: ChildProcess | undefined;
  private childExit: Promise<void> = Promise.resolve();
  private pending: NodeJS.Timeout | undefined;
  private stopping = false;
  private backoffMs: number;
  private starts = 0;
  /** Every exit seen, in order (the last ones are what a test or a status line wants). */
  readonly exits: Exit[] = [];

  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly stableAfterMs: number;
  private readonly log: (line: string) => void;

  constructor(private readonly options: SupervisorOptions) {
    this.initialBackoffMs = options.initialBackoffMs ?? 1_000;
    this.maxBackoffMs = options.maxBackoffMs ?? 30_000;
    this.stableAfterMs = options.stableAfterMs ?? 60_000;
    this.log = options.log ?? ((line) => console.error(line));
    this.backoffMs = this.initialBackoffMs;
  }

  /** Starts the child; the supervisor keeps it running until stop(). */
  start(): this {
    if (this.stopping) throw new Error(`${this.options.name}: the supervisor was stopped`);
    if (this.child === undefined && this.pending === undefined) this.spawn();
    return this;
  }

  /** The running child's pid (undefined while it waits for a restart). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** How many times the child was started again after an exit. */
  get restarts(): number {
    return Math.max(0, this.starts - 1);
  }

  /** Starts nothing more; stops the running child (SIGTERM; SIGKILL after graceMs) and resolves once it has exited. */
  async stop(graceMs = 15_000): Promise<void> {
    this.stopping = true;
    if (this.pending !== undefined) {
      clearTimeout(this.pending);
      this.pending = undefined;
    }
    const child = this.child;
    if (child === undefined) return;
    const exited = this.childExit;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    } else {
      await exited;
    }
  }

  private spawn(): void {
    const { file, args, cwd, env, logFile } = this.options;
    const out = logFile === undefined ? 'ignore' : fs.openSync(logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(file, args, {
        cwd,
        env: env ?? process.env,
        stdio: ['ignore', out, out],
        detached: this.options.detached ?? true,
      });
    } finally {
      if (typeof out === 'number') fs.closeSync(out);
    }
    this.starts++;
    const startedAt = Date.now();
    this.child = child;
    let settled = false;
    this.childExit = new Promise<void>((resolve) => {
      const onEnd = (code: number | null, signal: NodeJS.Signals | null, error?: Error) => {
        if (settled) return;
        settled = true;
        if (this.child === child) this.child = undefined;
        this.exited({ pid: child.pid, code, signal, ranMs: Date.now() - startedAt }, error);
        resolve();
      };
      child.once('exit', (code, signal) => onEnd(code, signal));
      // A child that could not be started at all (no such file) emits only 'error'.
      child.once('error', (error) => {
        if (child.pid === undefined) onEnd(null, null, error);
      });
    });
  }

  private exited(exit: Exit, error?: Error): void {
    this.exits.push(exit);
    if (this.stopping) return;
    if (exit.ranMs >= this.stableAfterMs) this.backoffMs = this.initialBackoffMs;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.maxBackoffMs);
    const how =
      error !== undefined
        ? `could not start (${error.message})`
        : `exited (${exit.signal ?? `code ${exit.code}`}) after ${formatMs(exit.ranMs)}`;
    const where = this.options.logFile === undefined ? '' : `; see ${this.options.logFile}`;
    this.log(
      `${this.options.name} (pid ${exit.pid ?? '-'}) ${how}; restart ${this.starts} in ${formatMs(delay)}${where}`,
    );
    this.pending = setTimeout(() => {
      this.pending = undefined;
      if (this.stopping) return;
      this.spawn();
      this.log(`${this.options.name} restarted (pid ${this.child?.pid ?? '-'})`);
    }, delay);
  }
}

function formatMs(ms: number): string {
  return ms < 1_000 ? `${ms} ms` : `${(ms / 1_000).toFixed(ms < 10_000 ? 1 : 0)} s`;
}
