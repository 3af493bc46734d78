/** Runs the `hv` CLI as a child process (asynchronously: the test worker runs in this process) against the test server. */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { testEnv } from '../helpers/env';

const BIN = path.resolve(__dirname, '../../bin/hv.js');

export interface HvRun {
  code: number;
  stdout: string;
  stderr: string;
}

export async function hv(args: string[], env: Record<string, string> = {}): Promise<HvRun> {
  const t = await testEnv();
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      {
        env: {
          ...process.env,
          TEMPORAL_ADDRESS: t.address,
          TEMPORAL_NAMESPACE: t.namespace,
          HV_TASK_QUEUE: t.taskQueue,
          HV_DATA_DIR: t.dataDir,
          ...env,
        },
        maxBuffer: 64 * 1024 * 1024,
        timeout: 120_000,
      },
      (err, stdout, stderr) => {
        const code = err
          ? typeof (err as { code?: unknown }).code === 'number'
            ? (err as { code: number }).code
            : -1
          : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** JSON from a --json run; fails with the run's output when it is not JSON. */
export function json<T = any>(run: HvRun): T {
  try {
    return JSON.parse(run.stdout) as T;
  } catch {
    throw new Error(`not JSON (exit ${run.code}):\nstdout: ${run.stdout}\nstderr: ${run.stderr}`);
  }
}

/** A fresh temporary directory for files the CLI reads. */
export function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'hv-cli-test-'));
}

export function show(run: HvRun): string {
  return `exit ${run.code}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`;
}
