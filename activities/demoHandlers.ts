/**
 * Step handlers for the demo (`npm run demo`): small stand-ins for an agent's
 * tools that log what they do, so the demo shows execution and compensation.
 * Agents declare them at join, per action (SPEC §11.4): DEMO_ACTIONS names
 * each action's `executeApi` and `undoApi` as `handler:<name>`; saga steps
 * name only the action, the agent and the input. docs/CLI.md ("The demo
 * handlers") lists them for the docs' examples, which declare them too:
 * `demo.lookup-contact` is the read-only one (the only kind a read-only
 * action — a sandboxed or quarantined agent's — may run), `demo.wire-funds`
 * has no undo, and `demo.send-email` fails on purpose when asked to.
 */
import { ApplicationFailure, log } from '@temporalio/activity';
import { registerStepHandler } from './handlers';

const api = (name: string) => ({ executeApi: `handler:${name}`, undoApi: `handler:${name}` });

/** The demo's actions as its agents declare them at join: how reversible, and what runs and undoes each. */
export const DEMO_ACTIONS = [
  { actionId: 'draft-email', reversibility: 'FULL' as const, ...api('demo.draft-email') },
  { actionId: 'reserve-budget', reversibility: 'PARTIAL' as const, riskWeight: 0.6, ...api('demo.reserve-budget') },
  { actionId: 'send-email', reversibility: 'PARTIAL' as const, ...api('demo.send-email') },
];

export function registerDemoHandlers(): void {
  registerStepHandler('demo.draft-email', {
    async execute(input, ctx) {
      log.info(`draft e-mail for ${ctx.agentDid}`, { key: ctx.idempotencyKey, input });
      return { draftId: `draft-${ctx.stepId}` };
    },
    async undo(_input, result, ctx) {
      log.info(`discard draft ${(result as { draftId?: string })?.draftId}`, { key: ctx.idempotencyKey });
      return { discarded: true };
    },
  });
  registerStepHandler('demo.reserve-budget', {
    async execute(input, ctx) {
      log.info(`reserve budget for ${ctx.agentDid}`, { key: ctx.idempotencyKey, input });
      return { reservationId: `res-${ctx.stepId}` };
    },
    async undo(_input, result, ctx) {
      log.info(`release reservation ${(result as { reservationId?: string })?.reservationId}`, {
        key: ctx.idempotencyKey,
      });
      return { released: true };
    },
  });
  registerStepHandler('demo.lookup-contact', {
    readOnly: true,
    async execute(input, ctx) {
      const name = (input as { name?: string } | null)?.name ?? 'board';
      log.info(`look up ${name} for ${ctx.agentDid}`, { key: ctx.idempotencyKey });
      return { name, email: `${name.toLowerCase().replace(/[^a-z0-9]+/g, '.')}@example.com` };
    },
  });
  // A payment cannot be taken back: no undo (declared reversibility NONE, so its step needs ring 1).
  registerStepHandler('demo.wire-funds', {
    async execute(input, ctx) {
      log.info(`wire funds for ${ctx.agentDid}`, { key: ctx.idempotencyKey, input });
      return { transferId: `tx-${ctx.stepId}` };
    },
  });
  registerStepHandler('demo.send-email', {
    async execute(input, ctx) {
      if ((input as { simulateOutage?: boolean } | null)?.simulateOutage) {
        throw ApplicationFailure.retryable(`mail gateway unavailable (attempt ${ctx.attempt})`, 'MailGatewayDown');
      }
      return { messageId: `msg-${ctx.stepId}` };
    },
    async undo(_input, _result, ctx) {
      return { recalled: true, key: ctx.idempotencyKey };
    },
  });
}
