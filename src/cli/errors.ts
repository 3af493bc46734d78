/**
 * What the CLI's exit codes mean, and how any error becomes one: a rule's
 * HypervisorError → 1 with its code; bad flags, arguments or input files → 2;
 * Temporal (or the hypervisor's worker) not answering → 3; audit verification
 * failed → 4; a saga that ended failed, compensated or escalated under --wait → 5;
 * the audit store opened holds no trail of the session (the wrong store, not a
 * verdict on the trail) → 6.
 */
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/common';
import {
  isGrpcDeadlineError,
  isGrpcServiceError,
  ServiceError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
} from '@temporalio/client';
import { ERRORS, HypervisorError, type ErrorCode } from '../core/errors';

export const EXIT = {
  OK: 0,
  REJECTED: 1,
  USAGE: 2,
  UNREACHABLE: 3,
  AUDIT_FAILED: 4,
  SAGA_FAILED: 5,
  NO_TRAIL: 6,
  /** A bug or an unexpected failure: the message says what happened. */
  INTERNAL: 70,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export const EXIT_CODE_TABLE: [ExitCode, string][] = [
  [EXIT.OK, 'ok'],
  [EXIT.REJECTED, 'a rule rejected the request; the error code is printed (e.g. SESSION_FULL, SESSION_NOT_FOUND)'],
  [EXIT.USAGE, 'usage error: unknown command, bad flags or arguments, an unreadable or invalid input file'],
  [
    EXIT.UNREACHABLE,
    'cannot reach Temporal, or no worker answered in time (run `npm start`, or set TEMPORAL_ADDRESS / --address)',
  ],
  [
    EXIT.AUDIT_FAILED,
    'audit verification failed: broken hash chain, wrong Merkle root or a root that differs from the commitment',
  ],
  [
    EXIT.SAGA_FAILED,
    'with --wait: the saga ended failed, compensated or escalated; `turn append`: the step did not commit (its error is printed)',
  ],
  [
    EXIT.NO_TRAIL,
    'the audit store hv opened holds no trail of the session (not a verdict on the trail: point hv at the store the worker writes, HV_AUDIT_DATABASE_URL or HV_DATA_DIR)',
  ],
];

/** An error the CLI reports itself: an exit code, a code for scripts, a message and what to do. */
export class CliError extends Error {
  constructor(
    readonly exitCode: ExitCode,
    readonly code: string,
    message: string,
    readonly hint?: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export class UsageError extends CliError {
  constructor(message: string, hint?: string) {
    super(EXIT.USAGE, 'USAGE', message, hint);
  }
}

export interface Connectivity {
  address: string;
  namespace: string;
  taskQueue: string;
  timeoutSeconds: number;
}

const GRPC_UNAVAILABLE = 14;
const GRPC_NOT_FOUND = 5;
const GRPC_DEADLINE_EXCEEDED = 4;
/** What a call cut off by the CLI's own --timeout deadline can also end as. */
const GRPC_CANCELLED = 1;

/**
 * True when the cause chain says no worker answered: a gRPC deadline (code 4)
 * or the cancellation our own deadline causes (code 1), however wrapped, or
 * the server's "no poller seen" for the task queue.
 */
function noWorkerAnswered(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const { code, message } = e as { code?: unknown; message?: unknown };
    if (code === GRPC_DEADLINE_EXCEEDED || code === GRPC_CANCELLED) return true;
    if (
      typeof message === 'string' &&
      /DEADLINE_EXCEEDED|deadline exceeded|CANCELLED: Call cancelled|no poller/i.test(message)
    )
      return true;
  }
  return false;
}

function grpcCause(err: unknown): { code: number; details: string } | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (isGrpcServiceError(e)) return { code: e.code, details: e.details };
  }
  return undefined;
}

/** Any error → a CliError with the exit code the docs promise. */
export function classify(err: unknown, conn: Connectivity): CliError {
  if (err instanceof CliError) return err;
  if (err instanceof HypervisorError) {
    if (err.code === 'AUDIT_CHAIN_BROKEN')
      return new CliError(EXIT.AUDIT_FAILED, err.code, err.message, hintFor(err.code), err.details);
    return new CliError(EXIT.REJECTED, err.code, err.message, hintFor(err.code), err.details);
  }
  if (err instanceof WorkflowNotFoundError) {
    return new CliError(EXIT.REJECTED, 'SESSION_NOT_FOUND', err.message, hintFor('SESSION_NOT_FOUND'));
  }
  if (err instanceof WorkflowExecutionAlreadyStartedError) {
    return new CliError(
      EXIT.REJECTED,
      'ALREADY_EXISTS',
      `workflow ${err.workflowId} already exists and is running`,
      'choose another id (or leave --id out to get a fresh one)',
    );
  }
  const startHint = `run \`npm start\` (it starts a local Temporal server and the worker), or point the CLI at your server with TEMPORAL_ADDRESS / --address`;
  const workerHint =
    `no hypervisor worker answered on task queue "${conn.taskQueue}" at ${conn.address} within ${conn.timeoutSeconds} s: ` +
    `run \`npm start\` or \`npm run worker\`, check --task-queue / HV_TASK_QUEUE, or raise --timeout`;
  const grpc = grpcCause(err);
  // A query with no worker to answer it fails as "Failed to query Workflow" around a deadline error.
  if (
    err instanceof WorkflowUpdateRPCTimeoutOrCancelledError ||
    isGrpcDeadlineError(err) ||
    grpc?.code === GRPC_DEADLINE_EXCEEDED ||
    noWorkerAnswered(err)
  ) {
    return new CliError(EXIT.UNREACHABLE, 'TIMEOUT', `no answer within ${conn.timeoutSeconds} s`, workerHint);
  }
  if (
    grpc?.code === GRPC_UNAVAILABLE ||
    (err instanceof ServiceError && /connect/i.test(err.message)) ||
    (err instanceof Error && /Failed to connect before the deadline|ECONNREFUSED|ENOTFOUND|EAI_AGAIN/.test(err.message))
  ) {
    return new CliError(
      EXIT.UNREACHABLE,
      'UNREACHABLE',
      `cannot reach Temporal at ${conn.address}: ${grpc?.details || (err as Error).message}`,
      startHint,
    );
  }
  if (grpc?.code === GRPC_NOT_FOUND && /namespace/i.test(grpc.details)) {
    return new CliError(
      EXIT.UNREACHABLE,
      'NAMESPACE_NOT_FOUND',
      `namespace "${conn.namespace}" not found at ${conn.address}`,
      'check --namespace / TEMPORAL_NAMESPACE',
    );
  }
  // Name every cause: "Failed to query Workflow" alone says nothing of why.
  const messages: string[] = [];
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    messages.push(e instanceof Error ? e.message : String(e));
  }
  return new CliError(
    EXIT.INTERNAL,
    'INTERNAL',
    messages.join(': '),
    'this is unexpected: please report it with the command you ran',
  );
}

/** What to do next: the code's hint in src/core/errors.ts's one table. */
function hintFor(code: ErrorCode): string {
  return ERRORS[code].hint;
}
