/**
 * Child processes of the e2e tests (the Python SDK, the temporal CLI): each one
 * is tracked until it exits, and stopProcesses() kills whatever is left, so an
 * after hook leaves nothing running even when a test failed or timed out.
 */
import { spawn, type ChildProcess } from 'node:child_process';

const running = new Set<ChildProcess>();

export interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function runProcess(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {},
): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const timer = options.timeoutMs
      ? setTimeout(() => {
          child.kill('SIGKILL');
          reject(
            new Error(
              `${command} ${args.join(' ')} did not finish within ${options.timeoutMs! / 1000} s\n${stderr.slice(-2000)}`,
            ),
          );
        }, options.timeoutMs)
      : undefined;
    child.on('error', (err) => {
      running.delete(child);
      if (timer) clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      running.delete(child);
      if (timer) clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Runs the command and returns its stdout; fails with its stderr when it exits non-zero. */
export async function runOk(
  command: string,
  args: string[],
  options: Parameters<typeof runProcess>[2] = {},
): Promise<string> {
  const r = await runProcess(command, args, options);
  if (r.code !== 0)
    throw new Error(
      `${command} ${args.join(' ')} exited with ${r.code ?? r.signal}:\n${r.stderr.slice(-4000)}${r.stdout.slice(-2000)}`,
    );
  return r.stdout;
}

/** Kills every child still running (for after hooks). */
export function stopProcesses(): void {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
}
