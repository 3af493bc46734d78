/** `hv turn …`: an agent's turn, an open saga (SPEC §13, docs/TURNS.md) — open, append a step, end, abort. */
import {
  AbortTurnRequestSchema,
  AppendStepRequestSchema,
  EndTurnRequestSchema,
  OpenTurnRequestSchema,
} from '../contract/turns';
import { stepAnswer } from '../client/turns';
import type { CliContext } from './context';
import {
  didFlag,
  jsonOrFile,
  numberFlag,
  optionalString,
  required,
  validate,
  type Command,
  type Values,
} from './command';
import { EXIT, UsageError } from './errors';
import { sessionIdArg } from './session';
import { time } from './format';

function turnArg(cmd: Command, value: string | undefined): string {
  if (value === undefined || value === '')
    throw new UsageError(`hv ${cmd.name} needs a TURN (its saga id)`, `usage: hv ${cmd.name} ${cmd.usage}`);
  return value;
}

const hint = (cmd: Command) => `run \`hv ${cmd.name} --help\`; the fields are those of docs/CONTRACT.md`;

const open: Command = {
  name: 'turn open',
  summary: "open an agent's turn: a saga whose steps it appends one at a time (SPEC §13)",
  args: ['SESSION'],
  usage: 'SESSION --agent DID [--id SAGA] [--deadline SECONDS] [--description TEXT]',
  options: {
    agent: { type: 'string' },
    id: { type: 'string' },
    deadline: { type: 'string' },
    description: { type: 'string' },
  },
  help: [
    ['--agent DID', 'the agent whose turn it is (required; it signs with --key in a did:key session)'],
    ['--id SAGA', "the turn's saga id (default saga-N)"],
    [
      '--deadline SECONDS',
      "when the turn ends by itself, compensating (default and bound: the session's config.turns)",
    ],
    ['--description TEXT', 'what the turn is for'],
  ],
  examples: ['hv turn open s1 --agent did:mesh:alpha --deadline 600'],
  async run(ctx, values, args) {
    const sessionId = sessionIdArg(this, args[0]);
    const agentDid = didFlag(this, values, 'agent');
    const deadlineSeconds = numberFlag(this, values, 'deadline', { min: 1, max: 604_800, integer: true });
    const sagaId = optionalString(values, 'id');
    const description = optionalString(values, 'description');
    const req = validate(
      OpenTurnRequestSchema,
      {
        agentDid,
        ...(sagaId !== undefined ? { sagaId } : {}),
        ...(description !== undefined ? { description } : {}),
        ...(deadlineSeconds !== undefined ? { deadlineSeconds } : {}),
      },
      'turn',
      hint(this),
    );
    const hv = await ctx.client();
    const opened = await ctx.call(() => hv.session(sessionId).send('openTurn', req));
    ctx.print({ sessionId, ...opened }, () =>
      [
        `Turn ${opened.sagaId} of ${agentDid} is open until ${time(opened.deadline)}`,
        `  append a step: hv turn append ${sessionId} ${opened.sagaId} --agent ${agentDid} --action ACTION`,
      ].join('\n'),
    );
  },
};

const append: Command = {
  name: 'turn append',
  summary: "append a step to the agent's open turn and wait for its answer: its result, or its error",
  args: ['SESSION', 'TURN'],
  usage: 'SESSION TURN --agent DID --action ID [--input JSON|FILE] [--step ID]',
  options: {
    agent: { type: 'string' },
    action: { type: 'string' },
    input: { type: 'string' },
    step: { type: 'string' },
  },
  help: [
    ['--agent DID', "the turn's agent (required)"],
    ['--action ID', 'the action, as the agent declared it at join (required)'],
    ['--input JSON|FILE', "the step's input: inline JSON or a JSON/YAML file"],
    ['--step ID', 'the step id (default step-N)'],
  ],
  examples: ['hv turn append s1 saga-1 --agent did:mesh:alpha --action draft --input \'{"to":"x"}\''],
  async run(ctx, values, args) {
    const sessionId = sessionIdArg(this, args[0]);
    const sagaId = turnArg(this, args[1]);
    const input = optionalString(values, 'input');
    const stepId = optionalString(values, 'step');
    const req = validate(
      AppendStepRequestSchema,
      {
        sagaId,
        agentDid: didFlag(this, values, 'agent'),
        actionId: required(this, values, 'action'),
        ...(input !== undefined ? { input: jsonOrFile(input, '--input') } : {}),
        ...(stepId !== undefined ? { stepId } : {}),
      },
      'step',
      hint(this),
    );
    const hv = await ctx.client();
    const appended = await ctx.call(() => hv.session(sessionId).send('appendStep', req));
    // The step may wait for approvals: its answer is waited for without the call deadline.
    const answer = await stepAnswer(hv.saga(sessionId, sagaId, { workflowId: appended.workflowId }), appended);
    ctx.print({ sessionId, ...answer }, () =>
      answer.ok
        ? `${answer.stepId} (${req.actionId}) committed: ${JSON.stringify(answer.result)}`
        : `${answer.stepId} (${req.actionId}) ${answer.state}: ${answer.error ?? 'no answer'}`,
    );
    return answer.ok ? EXIT.OK : EXIT.SAGA_FAILED;
  },
};

async function close(ctx: CliContext, cmd: Command, values: Values, args: string[], how: 'end' | 'abort') {
  const sessionId = sessionIdArg(cmd, args[0]);
  const sagaId = turnArg(cmd, args[1]);
  const agentDid = didFlag(cmd, values, 'agent');
  const reason = optionalString(values, 'reason');
  const hv = await ctx.client();
  const session = hv.session(sessionId);
  const result =
    how === 'end'
      ? await ctx.call(() => session.endTurn(validate(EndTurnRequestSchema, { sagaId, agentDid }, 'turn', hint(cmd))))
      : await ctx.call(() =>
          session.abortTurn(
            validate(
              AbortTurnRequestSchema,
              { sagaId, agentDid, ...(reason !== undefined ? { reason } : {}) },
              'turn',
              hint(cmd),
            ),
          ),
        );
  ctx.print({ sessionId, ...result }, () =>
    how === 'end'
      ? `Turn ${sagaId} ended: it completes once its steps ran (hv saga show ${sessionId} ${sagaId})`
      : `Turn ${sagaId} aborted: every step that may have acted is compensated, in reverse (hv saga show ${sessionId} ${sagaId})`,
  );
}

const end: Command = {
  name: 'turn end',
  summary: 'end the turn: it completes (a step that failed was its answer, and is not undone)',
  args: ['SESSION', 'TURN'],
  usage: 'SESSION TURN --agent DID',
  options: { agent: { type: 'string' } },
  help: [['--agent DID', "the turn's agent (required)"]],
  examples: ['hv turn end s1 saga-1 --agent did:mesh:alpha'],
  async run(ctx, values, args) {
    await close(ctx, this, values, args, 'end');
  },
};

const abort: Command = {
  name: 'turn abort',
  summary: 'abort the turn: every step that may have acted is compensated, in reverse, once each',
  args: ['SESSION', 'TURN'],
  usage: 'SESSION TURN --agent DID [--reason TEXT]',
  options: { agent: { type: 'string' }, reason: { type: 'string' } },
  help: [
    ['--agent DID', "the turn's agent (required)"],
    ['--reason TEXT', 'why (recorded in the audit)'],
  ],
  examples: ['hv turn abort s1 saga-1 --agent did:mesh:alpha --reason "the model gave up"'],
  async run(ctx, values, args) {
    await close(ctx, this, values, args, 'abort');
  },
};

export const turnCommands: Command[] = [open, append, end, abort];
