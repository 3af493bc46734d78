/** `hv saga …`: start (optionally --wait), show, approve, witness. */
import { setTimeout as delay } from 'node:timers/promises';
import { SessionIdSchema, StartSagaRequestSchema, type StartSagaRequest } from '../contract';
import { HypervisorError, isHypervisorError } from '../errors';
import type { SagaHandle } from '../client';
import type { SagaSnapshot } from '../../workflows/sagaTypes';
import type { CliContext } from './context';
import { didFlag, optionalString, parseJsonOrYaml, readFileText, validate, type Command } from './command';
import { CliError, EXIT, UsageError } from './errors';
import { Progress } from './progress';
import { sessionIdArg } from './session';
import { fields, section, table, time, truncate } from './format';

const FINAL = new Set(['completed', 'failed', 'compensated', 'escalated']);

function idArg(cmd: Command, value: string | undefined, name: string): string {
  if (value === undefined || value === '') throw new UsageError(`hv ${cmd.name} needs ${name}`, `usage: hv ${cmd.name} ${cmd.usage}`);
  return value;
}

export function renderSaga(s: SagaSnapshot): string {
  const g = s.saga;
  const out = [
    `Saga ${g.sagaId} of session ${g.sessionId} — ${g.state}`,
    fields([
      ['workflow', s.workflowId],
      ['started', time(g.createdAt)],
      ['finished', time(g.finishedAt)],
      ...(s.failedStepId ? [['failed step', s.failedStepId] as [string, string]] : []),
      ...(s.error ? [['error', s.error] as [string, string]] : []),
    ], '  '),
    section('Steps', table(['step', 'action', 'agent', 'state', 'attempts', 'error'],
      g.steps.map((st) => [st.stepId, st.actionId, st.agentDid, st.state, st.attempts, st.error === null ? null : truncate(st.error, 60)]))),
    `\nCompensation order: ${s.compensationOrder.length ? s.compensationOrder.join(' → ') : '(none)'}`,
  ];
  const approvals = Object.entries(s.approvals).filter(([, dids]) => dids.length > 0);
  if (approvals.length) out.push(section('Approvals', approvals.map(([step, dids]) => `  ${step}: ${dids.join(', ')}`).join('\n')));
  const witnesses = Object.entries(s.witnesses);
  if (witnesses.length) out.push(section('Witnesses', witnesses.map(([step, did]) => `  ${step}: ${did}`).join('\n')));
  return out.join('\n');
}

/** One line: where the saga is now. */
function status(s: SagaSnapshot, quorum: (stepId: string) => number | undefined): string {
  const g = s.saga;
  const current = g.steps.find((st) => st.state === 'executing' || st.state === 'compensating') ??
    g.steps.find((st) => st.state === 'pending');
  const done = g.steps.filter((st) => st.state === 'committed' || st.state === 'compensated').length;
  let text = `saga ${g.sagaId} ${g.state}, ${done}/${g.steps.length} steps done`;
  if (current) {
    text += `; ${current.stepId} (${current.actionId} by ${current.agentDid}) ${current.state}`;
    if (current.state === 'executing' && current.attempts > 1) text += `, attempt ${current.attempts}`;
    const approvals = s.approvals[current.stepId];
    if (current.state === 'pending' && approvals) text += `, approvals ${approvals.length}/${quorum(current.stepId) ?? '?'}`;
  }
  return text;
}

/** Wait for the saga's outcome, showing progress (not with --json). */
async function waitForOutcome(ctx: CliContext, saga: SagaHandle, quorum: (stepId: string) => number | undefined): Promise<SagaSnapshot> {
  const progress = new Progress(ctx.stderr, !ctx.json);
  let settled = false;
  const outcome = saga.result().finally(() => { settled = true; });
  outcome.catch(() => undefined);
  try {
    while (!settled) {
      const snap = await ctx.call(() => saga.state());
      progress.update(status(snap, quorum));
      if (FINAL.has(snap.saga.state)) break;
      await Promise.race([outcome.catch(() => undefined), delay(300)]);
    }
    return await outcome;
  } finally {
    progress.stop();
  }
}

const start: Command = {
  name: 'saga start',
  summary: 'start a saga from a JSON or YAML file',
  args: ['SESSION', 'FILE'],
  usage: 'SESSION FILE [--id SAGA] [--wait]',
  options: { id: { type: 'string' }, wait: { type: 'boolean' } },
  help: [
    ['FILE', 'JSON or YAML: {sagaId?, description?, steps: [{actionId, agentDid, handler | executeApi, undoApi?, input?, timeoutSeconds?, retry?, quorum?, approvalDeadlineSeconds?}]}'],
    ['--id SAGA', 'the saga id (overrides the file\'s sagaId; default saga-N)'],
    ['--wait', 'wait for the outcome, showing progress; exit 5 when it ends failed, compensated or escalated'],
  ],
  examples: ['hv saga start s1 saga.yaml --wait'],
  async run(ctx, values, args) {
    const sessionId = sessionIdArg(this, args[0]);
    const file = idArg(this, args[1], 'a saga FILE (JSON or YAML)');
    const raw = parseJsonOrYaml(readFileText(file, 'saga file'), `saga file ${file}`);
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      throw new UsageError(`saga file ${file} must hold an object {sagaId?, description?, steps: […]}`, 'see docs/CLI.md for an example');
    }
    const req = { ...(raw as Record<string, unknown>) };
    if ('sessionId' in req) {
      if (req.sessionId !== sessionId) throw new UsageError(`saga file ${file} names session ${String(req.sessionId)}, not ${sessionId}`, 'remove sessionId from the file or pass the same SESSION');
      delete req.sessionId;
    }
    const id = optionalString(values, 'id');
    if (id !== undefined) {
      const r = SessionIdSchema.safeParse(id);
      if (!r.success) throw new UsageError(`--id "${id}" is not a valid saga id: ${r.error.issues[0]?.message}`, `run \`hv ${this.name} --help\``);
      req.sagaId = id;
    }
    const parsed = validate(StartSagaRequestSchema, req, `saga file ${file}`, 'fix the fields named (see docs/CLI.md and contract/startSaga.schema.json)');
    const hv = await ctx.client();
    const saga = await ctx.call(() => hv.session(sessionId).startSaga(req as StartSagaRequest));
    const started = { sessionId, sagaId: saga.sagaId, workflowId: saga.handle.workflowId };
    if (!values.wait) {
      ctx.print(started, () => [
        `Started saga ${saga.sagaId} in session ${sessionId} (workflow ${saga.handle.workflowId})`,
        `Follow it: hv saga show ${sessionId} ${saga.sagaId}`,
      ].join('\n'));
      return;
    }
    ctx.note(`Started saga ${saga.sagaId} in session ${sessionId}; waiting for its outcome (Ctrl-C stops waiting, not the saga)`);
    const quorums = new Map(parsed.steps.map((st, i) => [st.stepId ?? `step-${i + 1}`, st.quorum]));
    const snap = await waitForOutcome(ctx, saga, (stepId) => quorums.get(stepId));
    ctx.print(snap, () => renderSaga(snap));
    if (snap.saga.state !== 'completed') {
      ctx.note(`saga ${saga.sagaId} ended ${snap.saga.state}${snap.error ? `: ${snap.error}` : ''}`);
      return EXIT.SAGA_FAILED;
    }
  },
};

/** The saga's snapshot, with SESSION_NOT_FOUND and SAGA_NOT_FOUND told apart. */
async function sagaSnapshot(ctx: CliContext, sessionId: string, sagaId: string): Promise<{ saga: SagaHandle; snap: SagaSnapshot; participants: Map<string, boolean> }> {
  const hv = await ctx.client();
  const summary = await ctx.call(() => hv.session(sessionId).summary());
  const saga = hv.saga(sessionId, sagaId);
  try {
    const snap = await ctx.call(() => saga.state());
    return { saga, snap, participants: new Map(summary.participants.map((p) => [p.did, p.active])) };
  } catch (err) {
    if (isHypervisorError(err, 'SESSION_NOT_FOUND')) throw new HypervisorError('SAGA_NOT_FOUND', `saga ${sagaId} not found in session ${sessionId}`);
    throw err;
  }
}

const show: Command = {
  name: 'saga show',
  summary: 'the steps (action, agent, state, attempts, error) and the compensation order',
  args: ['SESSION', 'SAGA'],
  usage: 'SESSION SAGA',
  options: {},
  help: [],
  async run(ctx, _values, args) {
    const sessionId = sessionIdArg(this, args[0]);
    const sagaId = idArg(this, args[1], 'a SAGA id');
    const { snap } = await sagaSnapshot(ctx, sessionId, sagaId);
    ctx.print(snap, () => renderSaga(snap));
  },
};

/** Checks the saga itself makes silently (it ignores approvals that do not count), made here with a reason. */
async function signalStep(ctx: CliContext, cmd: Command, values: Record<string, unknown>, args: string[], kind: 'approve' | 'witness') {
  const sessionId = sessionIdArg(cmd, args[0]);
  const sagaId = idArg(cmd, args[1], 'a SAGA id');
  const stepId = idArg(cmd, args[2], 'a STEP id');
  const did = didFlag(cmd, values as never, 'as');
  const found = await sagaSnapshot(ctx, sessionId, sagaId);
  const { saga, participants } = found;
  let snap = found.snap;
  // Until its session's ring view arrives the saga cannot tell who is a participant and drops approvals: wait for it.
  const readyBy = Date.now() + ctx.conn.timeoutSeconds * 1000;
  while (snap.ringViewVersion === null && snap.saga.state === 'running') {
    if (Date.now() > readyBy) throw new CliError(EXIT.UNREACHABLE, 'TIMEOUT', `saga ${sagaId} has not heard from session ${sessionId} in ${ctx.conn.timeoutSeconds} s`, 'is the worker running? try again, or raise --timeout');
    await delay(200);
    snap = await ctx.call(() => saga.state());
  }
  const step = snap.saga.steps.find((s) => s.stepId === stepId);
  if (!step) {
    throw new HypervisorError('STEP_NOT_FOUND', `saga ${sagaId} has no step ${stepId}; its steps: ${snap.saga.steps.map((s) => s.stepId).join(', ')}`);
  }
  if (snap.saga.state !== 'running' || step.state !== 'pending') {
    throw new HypervisorError('INVALID_TRANSITION', `step ${stepId} is ${step.state} in a ${snap.saga.state} saga; ${kind === 'approve' ? 'approvals' : 'a witness'} count only while the step waits to run`);
  }
  if (did === step.agentDid) {
    throw new HypervisorError('INVALID_INPUT', `${did} acts in step ${stepId}: its own ${kind === 'approve' ? 'approval' : 'witness co-sign'} does not count`);
  }
  if (kind === 'approve') {
    if (participants.get(did) !== true) {
      throw new HypervisorError('AGENT_NOT_FOUND', `${did} is not an active participant of session ${sessionId}; only participants approve`);
    }
    await ctx.call(() => saga.approve(stepId, did));
  } else {
    await ctx.call(() => saga.witness(stepId, did));
  }
  const after = await ctx.call(() => saga.state());
  const approvals = after.approvals[stepId] ?? [];
  if (kind === 'approve' ? !approvals.includes(did) : after.witnesses[stepId] !== did) {
    throw new HypervisorError('AGENT_NOT_FOUND', `saga ${sagaId} did not count ${did}'s ${kind === 'approve' ? 'approval' : 'witness co-sign'} for ${stepId} (not an active participant in its ring view)`);
  }
  const afterStep = after.saga.steps.find((s) => s.stepId === stepId);
  const result = { sessionId, sagaId, stepId, [kind === 'approve' ? 'approver' : 'witness']: did, approvals, witness: after.witnesses[stepId] ?? null, stepState: afterStep?.state ?? null };
  ctx.print(result, () => kind === 'approve'
    ? `${did} approved ${stepId} of saga ${sagaId}; approvals now: ${approvals.join(', ') || '(none)'} (step ${afterStep?.state})`
    : `${did} witnessed ${stepId} of saga ${sagaId} (step ${afterStep?.state})`);
}

const approve: Command = {
  name: 'saga approve',
  summary: 'approve a ring 1 step (consensus); the acting agent\'s own approval does not count',
  args: ['SESSION', 'SAGA', 'STEP'],
  usage: 'SESSION SAGA STEP --as DID',
  options: { as: { type: 'string' } },
  help: [['--as DID', 'the approving participant (required)']],
  examples: ['hv saga approve s1 g1 step-1 --as did:mesh:beta'],
  async run(ctx, values, args) {
    await signalStep(ctx, this, values, args, 'approve');
  },
};

const witness: Command = {
  name: 'saga witness',
  summary: 'co-sign a ring 0 step as an SRE witness',
  args: ['SESSION', 'SAGA', 'STEP'],
  usage: 'SESSION SAGA STEP --as DID',
  options: { as: { type: 'string' } },
  help: [['--as DID', 'the SRE witness (required; not the step\'s own agent)']],
  examples: ['hv saga witness s1 g1 step-1 --as did:mesh:sre'],
  async run(ctx, values, args) {
    await signalStep(ctx, this, values, args, 'witness');
  },
};

export const sagaCommands: Command[] = [start, show, approve, witness];
