/** `hv saga …`: start (optionally --wait), show, approve, witness. */
import { setTimeout as delay } from 'node:timers/promises';
import { SessionIdSchema, StartSagaRequestSchema, type StartSagaRequest } from '../contract';
import { HypervisorError, isHypervisorError } from '../core/errors';
import type { SagaHandle, SessionHandle } from '../client';
import type { SagaSnapshot } from '../contract/sagaTypes';
import type { EvidenceResult } from '../contract/sessionTypes';
import type { CliContext } from './context';
import { didFlag, optionalString, parseJsonOrYaml, readFileText, validate, type Command } from './command';
import { EXIT, UsageError } from './errors';
import { Progress } from './progress';
import { sessionIdArg } from './session';
import { fields, section, table, time, truncate } from './format';

const FINAL = new Set(['completed', 'failed', 'compensated', 'escalated']);

export function idArg(cmd: Command, value: string | undefined, name: string): string {
  if (value === undefined || value === '')
    throw new UsageError(`hv ${cmd.name} needs ${name}`, `usage: hv ${cmd.name} ${cmd.usage}`);
  return value;
}

export function renderSaga(s: SagaSnapshot): string {
  const g = s.saga;
  const out = [
    `Saga ${g.sagaId} of session ${g.sessionId} — ${g.state}`,
    fields(
      [
        ['workflow', s.workflowId],
        ['started', time(g.createdAt)],
        ['finished', time(g.finishedAt ?? (g.state === 'running' ? null : g.updatedAt))],
        ...(s.failedStepId ? [['failed step', s.failedStepId] as [string, string]] : []),
        ...(s.error ? [['error', s.error] as [string, string]] : []),
      ],
      '  ',
    ),
    section(
      'Steps',
      table(
        ['step', 'action', 'agent', 'state', 'attempts', 'error'],
        g.steps.map((st) => [
          st.stepId,
          st.actionId,
          st.agentDid,
          st.state,
          st.attempts,
          st.error === null ? null : truncate(st.error, 60),
        ]),
      ),
    ),
    `\nCompensation order: ${s.compensationOrder.length ? s.compensationOrder.join(' → ') : '(none)'}`,
  ];
  // SPEC §14: each parallel group, its policy and how it was decided.
  if (g.groups?.length)
    out.push(
      section(
        'Groups',
        table(
          ['group', 'policy', 'needed', 'state', 'decided by', 'kept'],
          g.groups.map((gr) => [
            gr.groupId,
            typeof gr.policy === 'string' ? gr.policy : `atLeast ${gr.policy.atLeast}`,
            `${gr.needed} of ${gr.branches.length}`,
            gr.state,
            gr.decidedBy,
            gr.kept.join(', ') || null,
          ]),
        ),
      ),
    );
  if (s.waiting) out.push(`\nWaiting: ${s.waiting.stepId} for ${s.waiting.waitFor} until ${time(s.waiting.deadline)}`);
  const grants = Object.entries(s.grants).filter(([, g]) => g.approvals.length > 0 || g.witness);
  if (grants.length) {
    out.push(
      section(
        'Granted with',
        grants
          .map(
            ([step, g]) =>
              `  ${step}: approvals ${g.approvals.join(', ') || '(none)'}${g.witness ? `; witness ${g.witness}` : ''}`,
          )
          .join('\n'),
      ),
    );
  }
  out.push(
    section(
      'Digests (what approvals and witnesses are bound to)',
      Object.entries(s.digests)
        .map(([step, d]) => `  ${step}: ${d}`)
        .join('\n'),
    ),
  );
  return out.join('\n');
}

/** One line: where the saga is now. */
function status(s: SagaSnapshot): string {
  const g = s.saga;
  const current =
    g.steps.find((st) => st.state === 'executing' || st.state === 'compensating') ??
    g.steps.find((st) => st.state === 'pending');
  const done = g.steps.filter((st) => st.state === 'committed' || st.state === 'compensated').length;
  let text = `saga ${g.sagaId} ${g.state}, ${done}/${g.steps.length} steps done`;
  if (current) {
    text += `; ${current.stepId} (${current.actionId} by ${current.agentDid}) ${current.state}`;
    if (current.state === 'executing' && current.attempts > 1) text += `, attempt ${current.attempts}`;
    if (current.state === 'pending' && s.waiting?.stepId === current.stepId)
      text += `, waiting for ${s.waiting.waitFor}`;
  }
  return text;
}

/** Wait for the saga's outcome, showing progress (not with --json). */
async function waitForOutcome(ctx: CliContext, saga: SagaHandle): Promise<SagaSnapshot> {
  const progress = new Progress(ctx.stderr, !ctx.json);
  let settled = false;
  const outcome = saga.result().finally(() => {
    settled = true;
  });
  outcome.catch(() => undefined);
  try {
    while (!settled) {
      const snap = await ctx.call(() => saga.state());
      progress.update(status(snap));
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
  usage: 'SESSION FILE [--id SAGA] [--request-id ID] [--wait]',
  options: { id: { type: 'string' }, 'request-id': { type: 'string' }, wait: { type: 'boolean' } },
  help: [
    [
      'FILE',
      'JSON or YAML: {sagaId?, description?, steps: [{actionId, agentDid, input?, stepId?, timeoutSeconds?, retry?, approvalDeadlineSeconds?} | {groupId?, parallel: [steps…], policy: ALL | MAJORITY | ANY | {atLeast: k}}]} — what runs is what the action declared at join',
    ],
    ['--id SAGA', "the saga id (overrides the file's sagaId; default saga-N)"],
    [
      '--request-id ID',
      "this start's request id (default: a new one): run the same command again with it after a failure, and you get the saga it started, never a second one",
    ],
    ['--wait', 'wait for the outcome, showing progress; exit 5 when it ends failed, compensated or escalated'],
  ],
  examples: ['hv saga start s1 saga.yaml --wait', 'hv saga start s1 saga.yaml --request-id deploy-2024-06-01'],
  async run(ctx, values, args) {
    const sessionId = sessionIdArg(this, args[0]);
    const file = idArg(this, args[1], 'a saga FILE (JSON or YAML)');
    const raw = parseJsonOrYaml(readFileText(file, 'saga file'), `saga file ${file}`);
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      throw new UsageError(
        `saga file ${file} must hold an object {sagaId?, description?, steps: […]}`,
        'see docs/CLI.md for an example',
      );
    }
    const req = { ...(raw as Record<string, unknown>) };
    if ('sessionId' in req) {
      if (req.sessionId !== sessionId)
        throw new UsageError(
          `saga file ${file} names session ${String(req.sessionId)}, not ${sessionId}`,
          'remove sessionId from the file or pass the same SESSION',
        );
      delete req.sessionId;
    }
    const id = optionalString(values, 'id');
    if (id !== undefined) {
      const r = SessionIdSchema.safeParse(id);
      if (!r.success)
        throw new UsageError(
          `--id "${id}" is not a valid saga id: ${r.error.issues[0]?.message}`,
          `run \`hv ${this.name} --help\``,
        );
      req.sagaId = id;
    }
    validate(
      StartSagaRequestSchema,
      req,
      `saga file ${file}`,
      'fix the fields named (see docs/CLI.md and contract/startSaga.schema.json)',
    );
    const requestId = optionalString(values, 'request-id');
    if (requestId !== undefined && !/^[A-Za-z0-9._:-]{1,200}$/.test(requestId)) {
      throw new UsageError(
        `--request-id "${requestId.slice(0, 50)}" is not a request id: 1-200 characters of A-Z a-z 0-9 . _ : -`,
        `run \`hv ${this.name} --help\``,
      );
    }
    const hv = await ctx.client();
    const saga = await ctx.call(() => hv.session(sessionId).startSaga(req as StartSagaRequest, { requestId }));
    const started = { sessionId, sagaId: saga.sagaId, workflowId: saga.handle.workflowId };
    if (!values.wait) {
      ctx.print(started, () =>
        [
          `Started saga ${saga.sagaId} in session ${sessionId} (workflow ${saga.handle.workflowId})`,
          `Follow it: hv saga show ${sessionId} ${saga.sagaId}`,
        ].join('\n'),
      );
      return;
    }
    ctx.note(
      `Started saga ${saga.sagaId} in session ${sessionId}; waiting for its outcome (Ctrl-C stops waiting, not the saga)`,
    );
    const snap = await waitForOutcome(ctx, saga);
    ctx.print(snap, () => renderSaga(snap));
    if (snap.saga.state !== 'completed') {
      ctx.note(`saga ${saga.sagaId} ended ${snap.saga.state}${snap.error ? `: ${snap.error}` : ''}`);
      return EXIT.SAGA_FAILED;
    }
  },
};

/** The saga's snapshot, with SESSION_NOT_FOUND and SAGA_NOT_FOUND told apart. */
async function sagaSnapshot(
  ctx: CliContext,
  sessionId: string,
  sagaId: string,
): Promise<{ saga: SagaHandle; snap: SagaSnapshot; participants: Map<string, boolean> }> {
  const hv = await ctx.client();
  const session = hv.session(sessionId);
  const summary = await ctx.call(() => session.summary());
  // Under the workflow id its session gave it (N16: either form; src/client/sagaIds.ts).
  const saga = await ctx.call(() => session.saga(sagaId));
  try {
    const snap = await ctx.call(() => saga.state());
    return { saga, snap, participants: new Map(summary.participants.map((p) => [p.did, p.active])) };
  } catch (err) {
    if (isHypervisorError(err, 'SESSION_NOT_FOUND'))
      throw new HypervisorError('SAGA_NOT_FOUND', `saga ${sagaId} not found in session ${sessionId}`);
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

/** How one kind of evidence is given: the request it sends, and what the CLI says when it was accepted. */
interface EvidenceKind {
  send(
    session: SessionHandle,
    step: { sagaId: string; stepId: string; digest: string },
    did: string,
  ): Promise<EvidenceResult>;
  told(did: string, step: { sagaId: string; stepId: string; digest: string }, result: EvidenceResult): string;
}

/** Approve, reject or witness a step: a request to the session, bound to the step's digest (SPEC §11.5). */
async function stepEvidence(
  ctx: CliContext,
  cmd: Command,
  values: Record<string, unknown>,
  args: string[],
  kind: EvidenceKind,
) {
  const sessionId = sessionIdArg(cmd, args[0]);
  const sagaId = idArg(cmd, args[1], 'a SAGA id');
  const stepId = idArg(cmd, args[2], 'a STEP id');
  const did = didFlag(cmd, values as never, 'as');
  const { snap } = await sagaSnapshot(ctx, sessionId, sagaId);
  const digest = Object.hasOwn(snap.digests, stepId) ? snap.digests[stepId] : undefined;
  if (!digest) {
    throw new HypervisorError(
      'STEP_NOT_FOUND',
      `saga ${sagaId} has no step ${stepId}; its steps: ${snap.saga.steps.map((s) => s.stepId).join(', ')}`,
    );
  }
  const session = (await ctx.client()).session(sessionId);
  const step = { sagaId, stepId, digest };
  const result = await ctx.call(() => kind.send(session, step, did));
  ctx.print({ sessionId, ...result, by: did }, () => kind.told(did, step, result));
}

const short = (digest: string) => `digest ${digest.slice(0, 12)}…`;

const approve: Command = {
  name: 'saga approve',
  summary: "approve a ring 1 step (consensus); the acting agent's own approval does not count",
  args: ['SESSION', 'SAGA', 'STEP'],
  usage: 'SESSION SAGA STEP --as DID',
  options: { as: { type: 'string' } },
  help: [['--as DID', 'the approving participant (required)']],
  examples: ['hv saga approve s1 g1 step-1 --as did:mesh:beta'],
  async run(ctx, values, args) {
    await stepEvidence(ctx, this, values, args, {
      send: (session, step, did) => session.approve({ ...step, approverDid: did }),
      told: (did, s, r) =>
        `${did} approved ${s.stepId} of saga ${s.sagaId}: ${r.approvals}/${r.quorum} approvals (${short(s.digest)})`,
    });
  },
};

const witness: Command = {
  name: 'saga witness',
  summary: "co-sign a ring 0 step as one of the session's SRE witnesses (config.sreWitnesses)",
  args: ['SESSION', 'SAGA', 'STEP'],
  usage: 'SESSION SAGA STEP --as DID',
  options: { as: { type: 'string' } },
  help: [
    ['--as DID', "the SRE witness (required; not the step's own agent); it signs with --key, in every identity mode"],
  ],
  examples: ['hv --key sre.key saga witness s1 g1 step-1 --as "$(hv keys show sre.key)"'],
  async run(ctx, values, args) {
    await stepEvidence(ctx, this, values, args, {
      send: (session, step, did) => session.witness({ ...step, witnessDid: did }),
      told: (did, s) => `${did} witnessed ${s.stepId} of saga ${s.sagaId} (${short(s.digest)})`,
    });
  },
};

const reject: Command = {
  name: 'saga reject',
  summary: 'reject a step waiting for approvals: it is denied at once',
  args: ['SESSION', 'SAGA', 'STEP'],
  usage: 'SESSION SAGA STEP --as DID --reason TEXT',
  options: { as: { type: 'string' }, reason: { type: 'string' } },
  help: [
    ['--as DID', 'the rejecting participant (required)'],
    ['--reason TEXT', 'why (required; recorded in the audit)'],
  ],
  examples: ['hv saga reject s1 g1 step-2 --as did:mesh:beta --reason "wrong account"'],
  async run(ctx, values, args) {
    const reason = optionalString(values as never, 'reason');
    if (!reason) throw new UsageError(`hv ${this.name} needs --reason`, `usage: hv ${this.name} ${this.usage}`);
    await stepEvidence(ctx, this, values, args, {
      send: (session, step, did) => session.reject({ ...step, approverDid: did, reason }),
      told: (did, s) => `${did} rejected ${s.stepId} of saga ${s.sagaId}: the step is denied`,
    });
  },
};

export const sagaCommands: Command[] = [start, show, approve, reject, witness];
