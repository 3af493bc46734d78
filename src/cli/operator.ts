/** `hv saga retry|skip|compensate|fork` (SPEC §14): an SRE's decision for a saga awaiting its operator, and a fork. */
import type { OperatorDecision } from '../core/operator';
import type { Command } from './command';
import { didFlag, optionalString } from './command';
import { UsageError } from './errors';
import { sessionIdArg } from './session';
import { idArg } from './saga';

const WHAT: Record<OperatorDecision, string> = {
  retry: 'run the failed step again (gated again, under a new round of its idempotency key)',
  skip: 'record the failed step skipped and go on (only for an action declared skippable)',
  compensate: 'walk the saga back now',
};

function decision(name: OperatorDecision): Command {
  return {
    name: `saga ${name}`,
    summary: `a saga awaiting its operator: ${WHAT[name]}`,
    args: ['SESSION', 'SAGA', 'STEP?'],
    usage: 'SESSION SAGA [STEP] --as SRE_DID [--reason TEXT]',
    options: { as: { type: 'string' }, reason: { type: 'string' } },
    help: [
      [
        '--as SRE_DID',
        "the SRE deciding, one of the session's config.sreWitnesses; it signs with --key, in every identity mode",
      ],
      ['--reason TEXT', 'why (recorded in the audit)'],
    ],
    examples: [`hv --key sre.key saga ${name} s1 g1 step-2 --as "$(hv keys show sre.key)"`],
    async run(ctx, values, args) {
      const sessionId = sessionIdArg(this, args[0]);
      const sagaId = idArg(this, args[1], 'a SAGA id');
      const stepId = args[2] || undefined;
      const sreDid = didFlag(this, values as never, 'as');
      const reason = optionalString(values as never, 'reason');
      const session = (await ctx.client()).session(sessionId);
      const r = await ctx.call(() =>
        session.decideSaga({
          sagaId,
          decision: name,
          sreDid,
          ...(stepId ? { stepId } : {}),
          ...(reason ? { reason } : {}),
        }),
      );
      ctx.print(
        { sessionId, ...r },
        () => `${r.by} decided ${r.decision} for ${r.stepId} of saga ${r.sagaId} (round ${r.round})`,
      );
    },
  };
}

const fork: Command = {
  name: 'saga fork',
  summary: 'a new saga from steps k…n of a failed or compensated one, gated afresh and linked to it',
  args: ['SESSION', 'SAGA'],
  usage: 'SESSION SAGA --from STEP [--id NEW_SAGA]',
  options: { from: { type: 'string' }, id: { type: 'string' } },
  help: [
    ['--from STEP', 'the step the fork starts from (required)'],
    ['--id NEW_SAGA', 'the new saga id (default: the next saga-N)'],
  ],
  examples: ['hv saga fork s1 g1 --from step-3'],
  async run(ctx, values, args) {
    const sessionId = sessionIdArg(this, args[0]);
    const sagaId = idArg(this, args[1], 'a SAGA id');
    const fromStepId = optionalString(values as never, 'from');
    if (!fromStepId) throw new UsageError(`hv ${this.name} needs --from STEP`, `usage: hv ${this.name} ${this.usage}`);
    const newSagaId = optionalString(values as never, 'id');
    const session = (await ctx.client()).session(sessionId);
    const forked = await ctx.call(() => session.forkSaga({ sagaId, fromStepId, ...(newSagaId ? { newSagaId } : {}) }));
    ctx.print(
      { sessionId, sagaId: forked.sagaId, workflowId: forked.handle.workflowId, forkedFrom: forked.forkedFrom },
      () => `saga ${forked.sagaId} forked from ${sagaId} at ${fromStepId} (workflow ${forked.handle.workflowId})`,
    );
  },
};

export const operatorCommands: Command[] = [decision('retry'), decision('skip'), decision('compensate'), fork];
